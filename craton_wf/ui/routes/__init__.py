"""The console's pages, one module per kind of object.

Each module's router carries the console's prefix itself
(``APIRouter(prefix=PREFIX)``) rather than receiving it from
``include_router``: a route's ``path`` is then its whole template
(``/ui/jobs/{job_id}``), which is what ``/metrics`` labels a request with.
"""
