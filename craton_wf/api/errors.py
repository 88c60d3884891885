"""The one place exceptions become HTTP answers: ``{"message", "status", "code"}``.

A database that gave up waiting for a lock (SQLite's busy timeout, PostgreSQL's
lock timeout, a broken deadlock: ``db.engine.is_busy``), like a request that
waited too long for a write slot (``api.write_slots``, ``DatabaseBusy``),
answers 503 with ``Retry-After``, code ``database_busy``: the request did
nothing and may be sent again, which a 500 would not say.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import iter_route_contexts
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from craton_wf.db.engine import is_busy
from craton_wf.errors import CratonError, DatabaseBusy, TooManyRequests

log = logging.getLogger(__name__)

RETRY_AFTER_BUSY_SECONDS = 1

_CODES = {
    400: "bad_request",
    401: "authentication_failed",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
}


def error_response(status: int, message: str, code: str | None = None) -> JSONResponse:
    return JSONResponse(
        status_code=status,
        content={"message": message, "status": status, "code": code or _CODES.get(status, "error")},
    )


def _answer(request: Request, status: int, message: str, code: str | None = None) -> Response:
    """The error as JSON; for a page of the web console, as its error page
    (``app.state.error_page``, set by ``ui.app``), same status and message."""
    error_page = getattr(request.app.state, "error_page", None)
    if error_page is not None:
        page = error_page(request, status, message)
        if page is not None:
            return page
    return error_response(status, message, code)


def _busy(exc: DatabaseBusy) -> JSONResponse:
    response = error_response(exc.status, exc.message, exc.code)
    response.headers["Retry-After"] = str(RETRY_AFTER_BUSY_SECONDS)
    return response


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        location = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body",))
        parts.append(f"{location or 'body'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def _allowed_methods(request: Request) -> str:
    """Every method the path takes (Starlette's 405 names only its first route's)."""
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.router.routes):  # included routers too
        if route.matches(request.scope)[0] != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return ", ".join(sorted(methods))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CratonError)
    async def _craton(request: Request, exc: CratonError) -> Response:
        if isinstance(exc, DatabaseBusy):
            return _busy(exc)
        if exc.status >= 500:
            log.error("%s: %s", type(exc).__name__, exc.message)
        answer = _answer(request, exc.status, exc.message, exc.code)
        if isinstance(exc, TooManyRequests):
            answer.headers["Retry-After"] = str(exc.retry_after)
        return answer

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return _answer(request, 422, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else "error"
        if exc.status_code == 404 and message == "Not Found":
            message = "no such resource"
        response = _answer(request, exc.status_code, message)
        response.headers.update(exc.headers or {})
        if exc.status_code == 405:
            response.headers["Allow"] = _allowed_methods(request)
        return response

    @app.exception_handler(DataError)
    async def _data(_request: Request, exc: DataError) -> JSONResponse:
        # A value the database cannot hold (a number past its column's range):
        # the request's fault, named; the request's transaction is rolled back.
        diag = getattr(exc.orig, "diag", None)
        detail = getattr(diag, "message_primary", None) or str(exc.orig).splitlines()[0]
        return error_response(400, f"a value does not fit the database: {detail}", "invalid_input")

    @app.exception_handler(OperationalError)
    async def _operational(request: Request, exc: OperationalError) -> JSONResponse:
        if not is_busy(exc):
            return await _unexpected(request, exc)
        log.warning("database busy: %s %s: %s", request.method, request.url.path, exc.orig)
        return _busy(DatabaseBusy())

    @app.exception_handler(OverflowError)
    async def _overflow(_request: Request, exc: OverflowError) -> JSONResponse:
        # SQLite's driver refuses an integer past 64 bits before the database sees it.
        return error_response(400, f"a value does not fit the database: {exc}", "invalid_input")

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return error_response(500, "internal error", "internal_error")
