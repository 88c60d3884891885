"""The exception tree of craton-wf.

::

    CratonError                 (500) something went wrong
    ├── InvalidInput            (400) the request is malformed or makes no sense
    │   ├── RefusedEnvironmentName (422) a name that would steer how the task starts
    │   ├── UndeclaredSecret    (422) a step hands a task a secret it does not declare
    │   └── InvalidParameter    (422) a template's launch gives a parameter it cannot take
    ├── AuthenticationFailed    (401) no or wrong credentials
    ├── Forbidden               (403) the caller may not do this
    ├── NotFound                (404) no such object in the caller's project
    ├── Conflict                (409) the object's state does not allow it
    ├── PayloadTooLarge         (413) a body or archive is over its cap
    ├── TooManyRequests         (429) over a rate limit; its retry_after says when to try
    ├── SourceError             (400) a task's source cannot be fetched or unpacked
    │   └── UnsafeSource        (400) a git URL, ref, path or archive member is refused
    ├── BuildError              a docker build or push failed
    ├── TlsSetupError           the service's TLS settings or files cannot be used
    ├── DatabaseBusy            (503) gave up waiting for the database's lock; send it again
    ├── ExecutorError           the container runtime refused or failed
    │   └── ContainerNotFound   the container is gone
    └── LeaseLost               a runner no longer owns the run it writes about

Each class's docstring is its default message. HTTP statuses are mapped in
``craton_wf.api.errors`` only, from ``status``.
"""

from __future__ import annotations

MAX_MESSAGE_CHARS = 2000  # of an SDK's or a tool's explanation quoted in an error


def truncate_message(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` cut to ``limit`` characters, ending in ``...`` when cut.

    SDK errors and tools' output are quoted in messages and logs at the
    boundary (builders, executors): bounded, so a huge body cannot flood them.
    """
    return text if len(text) <= limit else text[: limit - 3] + "..."


class CratonError(Exception):
    """Internal error."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str | None = None, **details: object) -> None:
        self.message = message or (self.__doc__ or self.__class__.__name__).strip()
        self.details = details
        super().__init__(self.message)


class InvalidInput(CratonError):
    """The request is invalid."""

    status = 400
    code = "invalid_input"


class RefusedEnvironmentName(InvalidInput):
    """That name may not be an environment variable of a task."""

    status = 422
    code = "environment_name_refused"


class UndeclaredSecret(InvalidInput):
    """A workflow step may only hand a task the secrets the task declares."""

    status = 422
    code = "secret_not_declared"


class InvalidParameter(InvalidInput):
    """A launch's parameters do not fit the template's declaration."""

    status = 422
    code = "parameter_invalid"


class AuthenticationFailed(CratonError):
    """Authentication is required: send X-Auth-User and X-Auth-Token, or a bearer token."""

    status = 401
    code = "authentication_failed"


class Forbidden(CratonError):
    """You are not allowed to do this."""

    status = 403
    code = "forbidden"


class NotFound(CratonError):
    """Not found."""

    status = 404
    code = "not_found"


class Conflict(CratonError):
    """The request conflicts with the current state of the object."""

    status = 409
    code = "conflict"


class PayloadTooLarge(CratonError):
    """The request body is too large."""

    status = 413
    code = "payload_too_large"


class TooManyRequests(CratonError):
    """Too many requests: send it again later."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str | None = None, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SourceError(CratonError):
    """The task's source could not be fetched."""

    status = 400
    code = "source_error"


class UnsafeSource(SourceError):
    """The task's source is refused: it is not safe to fetch or unpack."""

    code = "unsafe_source"


class BuildError(CratonError):
    """The image build failed."""

    code = "build_failed"


class TlsSetupError(CratonError):
    """The TLS settings or files of the service cannot be used."""

    code = "tls_setup_error"


class DatabaseBusy(CratonError):
    """The database is busy; try again shortly."""

    status = 503
    code = "database_busy"


class ExecutorError(CratonError):
    """The container runtime failed."""

    status = 503
    code = "executor_error"


class NameTaken(ExecutorError):
    """Another container, service or Job already has this run attempt's name."""

    code = "name_taken"


class ContainerNotFound(ExecutorError):
    """The container no longer exists."""

    code = "container_not_found"


class LeaseLost(CratonError):
    """This runner no longer holds the lease of the run."""

    status = 409
    code = "lease_lost"
