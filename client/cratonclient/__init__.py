"""Client library of craton-wf, the Craton workflow engine.

Only what ``__all__`` names is public; the modules starting with ``_`` are
the implementation and may change. Exceptions are also importable from
:mod:`cratonclient.exceptions`, whose docstring draws their tree.
"""

from ._client import Client
from ._resource import Page, Resource
from ._version import __version__
from .exceptions import (
    BadRequest,
    BadTLSFile,
    ClientError,
    Conflict,
    ConnectionFailed,
    Forbidden,
    HTTPError,
    NotFound,
    NoUniqueMatch,
    PayloadTooLarge,
    ServerError,
    Unauthorized,
    UnprocessableEntity,
)

__all__ = [
    "BadRequest",
    "BadTLSFile",
    "Client",
    "ClientError",
    "Conflict",
    "ConnectionFailed",
    "Forbidden",
    "HTTPError",
    "NoUniqueMatch",
    "NotFound",
    "Page",
    "PayloadTooLarge",
    "Resource",
    "ServerError",
    "Unauthorized",
    "UnprocessableEntity",
    "__version__",
]
