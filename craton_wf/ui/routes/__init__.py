"""The console's pages, one module per kind of object.

Each module's router carries the console's prefix itself
(``APIRouter(prefix=PREFIX)``) rather than receiving it from
``include_router``: a route's ``path`` is then its whole template
(``/ui/jobs/{job_id}``), which is what ``/metrics`` labels a request with.

A form's route declares what it answers when it succeeds (``status_code=303``,
a redirect): the audit event, written in the request's transaction before the
answer is sent, takes its status from the route, not from the response returned.
"""
