"""Dependencies of the routes: the request's session, the caller, list parameters, links.

A request has one session and one transaction (:func:`request_session`):
authentication, authorization, the route and, for a call that changes state,
its audit event (``api.audit``) all run in it, and it is committed when the
route has returned, before the answer is sent, so a client never sees an
answer whose work was not committed (a commit the database refuses answers
503 or 500 like any other error). A GET or HEAD request's transaction only
reads: it never takes SQLite's write lock (``db.engine``), so reads go on
while a runner or another request writes.

A token's last use, the one thing a read's authentication would write, goes
in a transaction of its own that does not wait for the lock: when another
connection writes, it is left for the token's next use. In the request's
transaction it would make every read a write (SQLite's lock, and on
PostgreSQL a lock on the token's row that every request of that token would
queue behind), and a note that may be skipped would fail requests.

What cannot be one transaction says so where it is: log streams read in a
short transaction per poll (``ReadSessionmaker``), as one open for a whole
stream would hold back the database; task uploads write in a transaction of
their own after reading the body, so that no lock is held while a slow
client sends it.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from types import UnionType
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin
from urllib.parse import urlencode

from fastapi import Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic_core import to_json
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from craton_wf.api import scope
from craton_wf.api.audit import is_audited, mark_recorded, record_call
from craton_wf.api.limits import reads_body_itself
from craton_wf.api.tls import certificate_user_name
from craton_wf.db.engine import is_busy, is_conflict
from craton_wf.errors import AuthenticationFailed, Forbidden
from craton_wf.services import policy
from craton_wf.services.auth import Principal, authenticate, authenticate_user, note_token_use
from craton_wf.services.pagination import Page, PageRequest
from craton_wf.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


READING_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Dependencies that only look at the request are ``async def``: FastAPI runs a
# plain ``def`` one in a worker thread, a round trip per dependency and request.


async def request_session(request: Request, response: Response) -> AsyncIterator[Session]:
    """The request's one session, in one transaction, committed when the route has
    returned (a dependency of ``"function"`` scope: before the answer is sent).

    A GET or HEAD request's transaction only reads (on SQLite it takes no write
    lock), as does a task upload's, whose route writes in a transaction of its
    own once it has read the body (``limits.reads_body_itself``). A
    state-changing call under ``/v1/`` that succeeded has its audit event
    written in this transaction, so the event and the change commit together;
    a refused or failed one is rolled back and recorded by ``api.audit`` in a
    transaction of its own. Runners are woken once the work they are woken for
    is committed (:func:`wake_runner`).

    Making the session touches no database (its connection is taken by its
    first statement, in a route's or a dependency's thread), so this runs on
    the event loop, and only ending the transaction goes to a thread.
    """
    state = request.app.state
    writes = request.method not in READING_METHODS and not reads_body_itself(request.scope)
    session: Session = (state.sessions if writes else state.read_sessions)()
    try:
        yield session
    except BaseException:
        # Here, not in a thread: an error's rollback is short, and a cancelled
        # request could not wait for a thread.
        session.close()
        raise
    await run_in_threadpool(_commit, session, request, response, writes)
    if writes:
        mark_recorded(request)
    if getattr(request.state, "wake_runner", False) and state.wakeup is not None:
        state.wakeup.set()


def _commit(session: Session, request: Request, response: Response, writes: bool) -> None:
    try:
        if writes and is_audited(request.url.path):
            route = request.scope.get("route")
            status = response.status_code or getattr(route, "status_code", None) or 200
            record_call(session, request, status, response.headers.get("location"))
        session.commit()
    finally:
        session.close()  # rolls back what was not committed


def again_on_conflict(session: Session, work: Callable[[], T], attempts: int = 3) -> T:
    """``work()`` in the request's transaction, run again in a new one when the
    database broke a deadlock with it (``db.engine.is_conflict``): for calls that
    lock rows runners lock too, in another order (cancelling a job locks the
    job, then its runs; a runner's claim locks a run, then its job)."""
    for attempt in range(1, attempts):
        try:
            return work()
        except DBAPIError as exc:
            if not is_conflict(exc):
                raise
            session.rollback()
            log.info("transaction rolled back to break a deadlock; attempt %d", attempt + 1)
            time.sleep(0.05 * attempt)
    return work()


def wake_runner(request: Request) -> None:
    """Wake the embedded runner once this request's transaction is committed (new work)."""
    request.state.wake_runner = True


async def get_read_sessionmaker(request: Request) -> sessionmaker[Session]:
    """Read-only sessions, for a route that reads in several short transactions (a stream)."""
    return request.app.state.read_sessions


async def get_sessionmaker(request: Request) -> sessionmaker[Session]:
    """Write sessions, for a route that writes after its request's transaction (an upload)."""
    return request.app.state.sessions


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(request_session, scope="function")]
ReadSessionmaker = Annotated[sessionmaker[Session], Depends(get_read_sessionmaker)]
WriteSessionmaker = Annotated[sessionmaker[Session], Depends(get_sessionmaker)]


# The credentials, as FastAPI's security classes so the OpenAPI document declares
# them (api.openapi states which go together). None refuses by itself: a missing
# or wrong credential is authenticate's AuthenticationFailed, as any other.
AUTH_TOKEN = APIKeyHeader(
    name="X-Auth-Token",
    scheme_name="X-Auth-Token",
    auto_error=False,
    description="An API token (`craton-wf bootstrap`, `POST /v1/tokens`).",
)
AUTH_USER = APIKeyHeader(
    name="X-Auth-User",
    scheme_name="X-Auth-User",
    auto_error=False,
    description="Optional: the token's user, checked against it.",
)
AUTH_PROJECT = APIKeyHeader(
    name="X-Auth-Project",
    scheme_name="X-Auth-Project",
    auto_error=False,
    description="Optional: the project to act in (default: the token's, else the user's).",
)
BEARER_TOKEN = HTTPBearer(
    scheme_name="Bearer",
    auto_error=False,
    description="An API token as `Authorization: Bearer <token>`.",
)


def get_principal(
    request: Request,
    session: SessionDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER_TOKEN)],
    x_auth_token: Annotated[str | None, Depends(AUTH_TOKEN)],
    x_auth_user: Annotated[str | None, Depends(AUTH_USER)],
    x_auth_project: Annotated[str | None, Depends(AUTH_PROJECT)],
) -> Principal:
    token = x_auth_token
    if token is None and bearer is not None:
        token = bearer.credentials
    if token is None:
        # Over mutual TLS, when the operator turned it on: the user the verified
        # client certificate names (api.tls). A token, when sent, always decides.
        field = request.app.state.settings.tls_client_user_field
        certified = certificate_user_name(request.scope, field)
        if certified is not None:
            return _certified_principal(request, session, certified, x_auth_user, x_auth_project)
    authenticated = authenticate(
        session, token=token, user_name=x_auth_user, project_id=x_auth_project
    )
    if authenticated.stale_token_id is not None:
        _note_token_use(request.app.state.try_sessions, authenticated.stale_token_id)
    request.state.principal = authenticated.principal  # for the audit trail
    return authenticated.principal


def _certified_principal(
    request: Request,
    session: Session,
    user_name: str,
    x_auth_user: str | None,
    x_auth_project: str | None,
) -> Principal:
    if x_auth_user and x_auth_user != user_name:
        raise AuthenticationFailed("the client certificate belongs to another user")
    principal = authenticate_user(session, user_name=user_name, project_id=x_auth_project)
    request.state.principal = principal  # for the audit trail
    return principal


def _note_token_use(try_sessions: sessionmaker[Session], token_id: int) -> None:
    try:
        with try_sessions.begin() as session:
            note_token_use(session, token_id)
    except OperationalError as exc:
        if not is_busy(exc):
            raise


CurrentUser = Annotated[Principal, Depends(get_principal)]


def authorize_route(request: Request, me: CurrentUser, session: SessionDep) -> Principal:
    """The route's own rule (services.policy.ROUTE_RULES), checked before the route runs.

    A route naming a project is judged by the caller's role there
    (``policy.in_project``). A refusal answers 404 instead of 403 when the path
    names an object the caller's project does not hold (``api.scope``).
    """
    route = getattr(request.scope.get("route"), "path", request.url.path)
    params = request.path_params
    judged = me
    if "project_id" in params:
        judged = policy.in_project(session, me, params["project_id"])
    try:
        policy.authorize(judged, request.method, route)
    except Forbidden:
        scope.require_named_objects(session, me, route, params)
        raise
    return me


Authorized = Depends(authorize_route)


async def require_root(me: CurrentUser) -> Principal:
    if not me.is_root:
        raise Forbidden("only a root user may do this")
    return me


RootUser = Annotated[Principal, Depends(require_root)]


async def get_page_request(
    request: Request,
    settings: SettingsDep,
    limit: Annotated[int | None, Query(ge=1)] = None,
    marker: str | None = None,
    sort_keys: str | None = None,
    sort_key: Annotated[
        str | None, Query(description="Craton's client's spelling of sort_keys")
    ] = None,
    sort_dir: Annotated[str, Query(pattern="^(asc|desc)$")] = "asc",
) -> PageRequest:
    from craton_wf.errors import InvalidInput

    reject_unknown_query(request)
    if limit is not None and limit > settings.page_max_limit:
        raise InvalidInput(f"limit must be at most {settings.page_max_limit}")
    wanted = sort_keys or sort_key or "id"
    # Craton splits sort keys on commas and spaces alike.
    keys = tuple(k for k in re.split(r"[ ,]", wanted) if k) or ("id",)
    return PageRequest(
        limit=limit or settings.page_default_limit, marker=marker, sort_keys=keys, sort_dir=sort_dir
    )


def _query_names(dependant: Any) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def reject_unknown_query(request: Request) -> None:
    """400 naming any query parameter the route does not declare.

    A filter a list does not know would otherwise be ignored, and the caller
    would take the whole list for the filtered one.
    """
    from craton_wf.errors import InvalidInput

    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    known = _query_names(dependant)
    unknown = sorted({key for key in request.query_params if key not in known})
    if unknown:
        raise InvalidInput(
            f"unknown query parameter{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}; "
            f"this list takes: {', '.join(sorted(known))}"
        )


def _takes_one(annotation: Any) -> bool:
    """Whether a query parameter of this type takes one value (not ``list[str] | None``)."""
    members = get_args(annotation) if get_origin(annotation) in (Union, UnionType) else ()
    return not any(
        get_origin(member) in (list, tuple, set, frozenset) or member in (list, tuple, set)
        for member in (*members, annotation)
    )


def _single_query_names(dependant: Any) -> set[str]:
    names = {p.alias for p in dependant.query_params if _takes_one(p.field_info.annotation)}
    for sub in dependant.dependencies:
        names |= _single_query_names(sub)
    return names


async def reject_repeated_query(request: Request) -> None:
    """400 naming a query parameter given more than once where the route takes one
    value (``?name=a&name=b``): FastAPI would read the last one and drop the rest."""
    from craton_wf.errors import InvalidInput

    dependant = getattr(request.scope.get("route"), "dependant", None)
    if dependant is None or not request.query_params:
        return
    repeated = sorted(
        name
        for name in _single_query_names(dependant)
        if len(request.query_params.getlist(name)) > 1
    )
    if repeated:
        raise InvalidInput(f"query parameter given more than once: {', '.join(repeated)}")


PageDep = Annotated[PageRequest, Depends(get_page_request)]


# For a route that takes no page: its query parameters checked all the same.
async def known_query(request: Request) -> None:
    reject_unknown_query(request)


KnownQuery = Annotated[None, Depends(known_query)]


_SCHEMES = frozenset({"http", "https"})
_HOST = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


def _first_forwarded(value: str | None) -> str:
    # A chain of proxies appends: the first value is what the client asked for.
    return (value or "").split(",")[0].strip()


def api_base_url(request: Request) -> str:
    """Where clients reach the API, without a trailing slash: links are absolute.

    ``external_url`` when the operator set it; else the request's own scheme
    and host, from ``X-Forwarded-Proto``/``X-Forwarded-Host`` only when the
    operator trusts the proxy (``trust_forwarded_headers``): a client could
    otherwise point the links of every answer it gets elsewhere.
    """
    settings: Settings = request.app.state.settings
    if settings.external_url:
        return settings.external_url.rstrip("/")
    base = str(request.base_url).rstrip("/")
    if not settings.trust_forwarded_headers:
        return base
    scheme = _first_forwarded(request.headers.get("x-forwarded-proto")).lower()
    host = _first_forwarded(request.headers.get("x-forwarded-host"))
    root = request.scope.get("root_path", "").rstrip("/")
    return (
        f"{scheme if scheme in _SCHEMES else request.url.scheme}://"
        f"{host if _HOST.match(host) else request.url.netloc}{root}"
    )


def page_links(request: Request, page: Page[Any]) -> list[dict[str, str]]:
    """Craton's ``links``, absolute URLs: self, and next when there may be more."""
    path, root = request.url.path, request.scope.get("root_path", "")
    base = api_base_url(request) + (path[len(root) :] if root and path.startswith(root) else path)
    links = [
        {
            "rel": "self",
            "href": base + (f"?{request.url.query}" if request.url.query else ""),
        }
    ]
    if page.has_more:
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "marker"]
        params.append(("marker", str(page.next_marker)))
        if not any(k == "limit" for k, _ in params):
            params.append(("limit", str(len(page.items))))
        links.append({"rel": "next", "href": f"{base}?{urlencode(params)}"})
    return links


def json_answer(content: Any) -> Response:
    """``content`` (dicts, lists, datetimes…) as JSON in one call to pydantic's
    serializer, as a route's ``response_model`` would write it, without building
    and validating a model object per item first: for answers of many items
    (a page of hosts) whose route keeps ``response_model`` for the OpenAPI document."""
    return Response(content=to_json(content), media_type="application/json")


def created(response: Response, request: Request, path: str) -> None:
    """201's Location header for a new object at ``path`` (relative to /v1)."""
    response.headers["Location"] = api_base_url(request) + "/v1/" + path.lstrip("/")
