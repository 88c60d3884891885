"""``create_app(settings)``: the FastAPI application, built from explicit settings."""

from __future__ import annotations

from typing import Protocol

from fastapi import Depends, FastAPI
from sqlalchemy.orm import Session, sessionmaker

from craton_wf import __version__
from craton_wf.api import openapi
from craton_wf.api.audit import AuditTrail
from craton_wf.api.deps import reject_repeated_query
from craton_wf.api.errors import install_error_handlers
from craton_wf.api.limits import BodySizeLimit
from craton_wf.api.metrics import install_metrics
from craton_wf.api.operator_warnings import WarningHeaders, operator_warnings
from craton_wf.api.routes import (
    inventory,
    jobs,
    schedules,
    secrets,
    system,
    tasks,
    templates,
    triggers,
    users,
    webhooks,
    workflows,
)
from craton_wf.api.write_slots import WRITE_SLOTS, WriteSlots, write_slot
from craton_wf.db.engine import is_sqlite, make_engine, make_session_factory, reading, trying
from craton_wf.services import project_secrets
from craton_wf.settings import Settings


class Wakeup(Protocol):
    """What wakes the embedded runner: its ``threading.Event``, or in a worker process
    the signal to the parent's (``api.workers``)."""

    def set(self) -> None: ...


def create_app(
    settings: Settings,
    sessions: sessionmaker[Session] | None = None,
    wakeup: Wakeup | None = None,
) -> FastAPI:
    """The API. ``wakeup`` is set whenever new work is queued (the embedded runner waits on it)."""
    app = FastAPI(
        title="craton-wf",
        version=__version__,
        description="Containerized task-job platform for cloud operators",
        openapi_tags=openapi.TAGS,
        docs_url=None,  # openapi.install_docs: pages whose assets the app serves
        redoc_url=None,
    )
    project_secrets.cipher(settings)  # a bad secret key stops the service here, not later
    app.state.settings = settings
    app.state.sessions = sessions or make_session_factory(make_engine(settings))
    app.state.read_sessions = reading(app.state.sessions)  # api.deps: which a request gets
    app.state.try_sessions = trying(app.state.sessions)
    app.state.wakeup = wakeup
    install_error_handlers(app)
    # inside the audit trail, so a refused body is recorded as its 413
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.request_max_bytes,
        upload_max_bytes=settings.upload_max_bytes,
    )
    app.add_middleware(AuditTrail)
    # outermost: every answer says it, the body limit's 413 included
    app.add_middleware(WarningHeaders, warnings=operator_warnings(settings))
    install_metrics(app, settings)  # /metrics; counts every answer, so outside the others
    app.state.write_slots = (
        WriteSlots(WRITE_SLOTS, settings.sqlite_lock_timeout_seconds)
        if is_sqlite(settings.database_url)
        else None
    )
    for module in (
        system,
        inventory,
        tasks,
        workflows,
        jobs,
        templates,
        schedules,
        users,
        secrets,
        webhooks,
        triggers,
    ):
        app.include_router(
            module.router, dependencies=[Depends(write_slot), Depends(reject_repeated_query)]
        )
    openapi.install_openapi(app)
    openapi.install_docs(app)
    # The web console; imported here, as the app is made: it is the API's, not its layer's.
    from craton_wf.ui.app import install_console

    install_console(app)
    return app
