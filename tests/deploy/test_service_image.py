"""The service image, built from the Dockerfile and started on the local engine.

``scripts/build-service-image.sh`` builds it from a locally made base
(craton/python:3, made here when missing) and offline wheels, and skips the
build when the image already carries the sources' hash, so a second run costs
a second. The container then runs as a user would run it: migrate into a
volume, serve the API on a read-only root filesystem, turn healthy by the
image's own health check, answer ``/healthz`` on a published loopback port.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import docker
import docker.errors
import pytest
from docker.models.containers import Container

pytestmark = [pytest.mark.docker, pytest.mark.slow]

HEALTHY_WITHIN_SECONDS = 90


def run_once(
    client: docker.DockerClient, image: str, command: list[str], **options: Any
) -> tuple[int, str]:
    """Run a container to its end; its exit code and output."""
    container = client.containers.run(image, command, detach=True, **options)
    try:
        status = container.wait(timeout=120)
        return status["StatusCode"], container.logs().decode()
    finally:
        container.remove(force=True)


def wait_healthy(container: Container) -> None:
    deadline = time.monotonic() + HEALTHY_WITHIN_SECONDS
    status = "unknown"
    while time.monotonic() < deadline:
        container.reload()
        state = container.attrs["State"]
        if not state["Running"]:
            pytest.fail(f"the service exited ({state['ExitCode']}): {container.logs().decode()}")
        status = state.get("Health", {}).get("Status", "none")
        if status == "healthy":
            return
        time.sleep(0.5)
    pytest.fail(f"not healthy after {HEALTHY_WITHIN_SECONDS}s ({status}): {container.logs()!r}")


def get_json(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_image_runs_as_uid_10001_with_a_health_check(
    docker_client: docker.DockerClient, service_image: str
) -> None:
    config = docker_client.images.get(service_image).attrs["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["craton-wf"]
    assert config["Cmd"] == ["serve", "--no-runner"]
    assert any("/healthz" in part for part in config["Healthcheck"]["Test"])
    assert config["Labels"]["craton.source-hash"]


def test_cli_answers_help(
    docker_client: docker.DockerClient, service_image: str, labels: dict[str, str]
) -> None:
    code, output = run_once(docker_client, service_image, ["--help"], labels=labels)
    assert code == 0, output
    for command in ("serve", "runner", "migrate"):
        assert command in output


def test_migrated_service_turns_healthy_and_answers_healthz(
    docker_client: docker.DockerClient, service_image: str, labels: dict[str, str]
) -> None:
    volume = docker_client.volumes.create(labels=labels)
    state = {volume.name: {"bind": "/var/lib/craton-wf", "mode": "rw"}}
    hardened: dict[str, Any] = {
        "labels": labels,
        "volumes": state,
        "read_only": True,
        "tmpfs": {"/tmp": ""},
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
    }

    code, output = run_once(docker_client, service_image, ["migrate"], **hardened)
    assert code == 0, output
    assert "database is up to date" in output

    service = docker_client.containers.run(
        service_image,
        ["serve", "--no-runner", "--no-migrate"],
        detach=True,
        ports={"7780/tcp": ("127.0.0.1", None)},
        # The image's own check, probed every second instead of every 30.
        healthcheck={"interval": 1_000_000_000, "start_period": 60_000_000_000},
        **hardened,
    )
    wait_healthy(service)
    assert service.exec_run(["id", "-u"]).output.decode().strip() == "10001"

    service.reload()
    port = service.attrs["NetworkSettings"]["Ports"]["7780/tcp"][0]["HostPort"]
    status, body = get_json(f"http://127.0.0.1:{port}/healthz")
    assert (status, body) == (200, {"status": "ok"})
    # No runner and no engine socket in this container: not ready, but the
    # migrated database answers.
    status, body = get_json(f"http://127.0.0.1:{port}/readyz")
    assert status == 503
    assert body["checks"]["database"] == "ok"
