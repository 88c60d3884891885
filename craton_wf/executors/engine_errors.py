"""The Docker engine's errors, wrapped into the project's own at the boundary.

Every call the docker and swarm executors make to the engine goes through
:func:`docker_errors`: a missing container becomes ``ContainerNotFound``,
anything else the SDK or the transport raises an ``ExecutorError``, with the
engine's status and a truncated explanation. It is a module of its own
because both the executors and the reading of a container's output
(:mod:`craton_wf.executors.container_output`) need it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import docker.errors
import requests
import urllib3.exceptions

from craton_wf.errors import ContainerNotFound, ExecutorError, truncate_message


def docker_message(exc: Exception) -> str:
    """What an SDK error says, with the engine's status, truncated."""
    if isinstance(exc, docker.errors.APIError):
        explanation = exc.explanation or str(exc)
        if isinstance(explanation, bytes):
            explanation = explanation.decode("utf-8", "replace")
        return truncate_message(f"{exc.status_code}: {explanation}")
    return truncate_message(str(exc) or type(exc).__name__)


@contextmanager
def docker_errors(action: str) -> Iterator[None]:
    """Translate SDK and transport errors raised while doing ``action``."""
    try:
        yield
    except docker.errors.ImageNotFound as exc:
        raise ExecutorError(f"could not {action}: image not found: {docker_message(exc)}") from exc
    except docker.errors.NotFound as exc:
        raise ContainerNotFound(f"could not {action}: {docker_message(exc)}") from exc
    except (
        docker.errors.DockerException,
        requests.exceptions.RequestException,
        urllib3.exceptions.HTTPError,
    ) as exc:
        raise ExecutorError(f"could not {action}: {docker_message(exc)}") from exc
