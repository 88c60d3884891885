"""Fixtures of the deployment tests that use the Docker engine.

``service_image`` is the image ``scripts/build-service-image.sh`` builds (or
finds up to date); everything a test creates carries the ``craton.test`` label
of its module and is removed at the end.
"""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "craton/python:3"
TEST_LABEL = "craton.test"


@pytest.fixture(scope="module")
def labels(docker_client: docker.DockerClient) -> Iterator[dict[str, str]]:
    """Labels of everything this module creates; all of it goes at the end."""
    session = uuid.uuid4().hex[:10]
    yield {TEST_LABEL: session}
    filters = {"label": f"{TEST_LABEL}={session}"}
    for container in docker_client.containers.list(ignore_removed=True, all=True, filters=filters):
        container.remove(force=True)
    for volume in docker_client.volumes.list(filters=filters):
        with contextlib.suppress(docker.errors.APIError):
            volume.remove(force=True)


@pytest.fixture(scope="session")
def service_image(docker_client: docker.DockerClient) -> str:
    try:
        docker_client.images.get(BASE_IMAGE)
    except docker.errors.ImageNotFound:
        made = subprocess.run(
            [str(ROOT / "scripts" / "make-base-images.sh"), "--only", "python"],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if made.returncode != 0:
            pytest.skip(f"the base image {BASE_IMAGE} cannot be made here: {made.stderr[-800:]}")
    built = subprocess.run(
        [str(ROOT / "scripts" / "build-service-image.sh"), "--base", BASE_IMAGE],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    return built.stdout.strip().splitlines()[-1]
