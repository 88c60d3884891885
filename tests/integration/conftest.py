"""Fixtures for tests against the real Docker engine.

The base image comes from the ``busybox_image`` fixture of ``tests/conftest.py``
(made on demand by ``scripts/make-base-images.sh --only busybox``). Everything a
test creates carries the session's ``craton.test`` label and is removed by
label at the end, even when a test failed halfway.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator

import docker
import docker.errors
import pytest

TEST_LABEL = "craton.test"


@pytest.fixture(scope="session")
def test_session_id(docker_client: docker.DockerClient) -> Iterator[str]:
    """A label value naming this test session; its containers and images go at the end."""
    session_id = uuid.uuid4().hex[:10]
    yield session_id
    filters = {"label": f"{TEST_LABEL}={session_id}"}
    for container in docker_client.containers.list(ignore_removed=True, all=True, filters=filters):
        container.remove(force=True)
    for image in docker_client.images.list(filters=filters):
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.images.remove(image.id, force=True)


@pytest.fixture
def test_labels(test_session_id: str) -> dict[str, str]:
    return {TEST_LABEL: test_session_id}


@pytest.fixture
def unique_name(test_session_id: str) -> Callable[[str], str]:
    """Names unique to this session and call: ``unique_name("logs")``."""

    def make(prefix: str) -> str:
        return f"craton-test-{test_session_id}-{prefix}-{uuid.uuid4().hex[:6]}"

    return make


@pytest.fixture(scope="session")
def registry() -> str:
    """A Docker registry on loopback: ``CRATON_WF_TEST_REGISTRY``, or one started here.

    ``.ci/run`` starts one (scripts/start-registry.sh) and names it; elsewhere the
    script is tried, and the tests are skipped only when it cannot run.
    """
    import os
    import subprocess
    import urllib.request
    from pathlib import Path

    address = os.environ.get("CRATON_WF_TEST_REGISTRY")
    if not address:
        script = Path(__file__).resolve().parents[2] / "scripts" / "start-registry.sh"
        done = subprocess.run([str(script)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"no registry: scripts/start-registry.sh failed: {done.stderr.strip()}")
        address = done.stdout.strip().splitlines()[-1]
    with urllib.request.urlopen(f"http://{address}/v2/", timeout=5) as answer:
        assert answer.status == 200, f"the registry at {address} does not answer /v2/"
    return address
