"""The :class:`Client`: one session, one manager per resource."""

from __future__ import annotations

from typing import Any

import httpx

from ._inventory import CellManager, CloudManager, HostManager, ProjectManager, RegionManager
from ._jobs import JobManager, RunnerManager
from ._schedules import ScheduleManager
from ._session import DEFAULT_TIMEOUT, Session
from ._tasks import TaskManager
from ._templates import JobTemplateManager
from ._tls import Cert, Verify
from ._users import AuditEventManager, SecretManager, TokenManager, UserManager
from ._webhooks import WebhookManager
from ._workflows import WorkflowManager


class Client:
    """A client of one craton-wf server.

    >>> client = Client("http://127.0.0.1:7780", username="root", token="...")
    >>> [h.name for h in client.hosts.list(region="r1", label=["compute"])]

    ``token`` is sent as ``X-Auth-Token`` with ``X-Auth-User: username``, or
    as a bearer token when no user name is given; ``project_id`` (a UUID) picks
    the project to act in. ``transport`` replaces httpx's network transport,
    e.g. ``httpx.MockTransport(handler)`` or ``httpx.ASGITransport(app)`` in
    tests.

    Over https, ``verify`` is the CA file (or directory) the server's
    certificate is checked by (default: httpx's trusted CAs; ``False``: no
    check), and ``cert`` the client certificate for a server that asks for
    one: a PEM file with certificate and key, or ``(certificate, key)``.
    A file that cannot be used raises :class:`~cratonclient.BadTLSFile`.
    """

    def __init__(
        self,
        url: str,
        project_id: str | None = None,
        username: str | None = None,
        token: str | None = None,
        *,
        transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        verify: Verify = True,
        cert: Cert | None = None,
    ) -> None:
        self.session = Session(
            url,
            project_id=project_id,
            username=username,
            token=token,
            transport=transport,
            timeout=timeout,
            verify=verify,
            cert=cert,
        )
        self.projects = ProjectManager(self.session)
        self.clouds = CloudManager(self.session)
        self.regions = RegionManager(self.session)
        self.cells = CellManager(self.session)
        self.hosts = HostManager(self.session)
        self.tasks = TaskManager(self.session)
        self.workflows = WorkflowManager(self.session)
        self.jobs = JobManager(self.session)
        self.job_templates = JobTemplateManager(self.session)
        self.schedules = ScheduleManager(self.session)
        self.runners = RunnerManager(self.session)
        self.users = UserManager(self.session)
        self.tokens = TokenManager(self.session)
        self.secrets = SecretManager(self.session)
        self.audit_events = AuditEventManager(self.session)
        self.webhooks = WebhookManager(self.session)

    @property
    def url(self) -> str:
        return self.session.url

    def health(self) -> dict[str, Any]:
        """``GET /healthz``."""
        return dict(self.session.get_json("/healthz"))

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
