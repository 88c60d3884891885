"""The Swarm stack file, loaded by the Docker CLI itself, then deployed.

``docker stack config`` interpolates the variables and validates the file
against the compose schema of its version, offline, without deploying; the
tests assert on the configuration Swarm would get. One test deploys the stack
on the local swarm with the service image and checks the migrations ran once
and the API turned healthy by the stack's health check.

The routing mesh of a published port does not answer on every host (not in
this sandbox's engine), so ``/healthz`` is asked from inside the API's task.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "deploy" / "swarm" / "craton-wf.stack.yml"
SETTINGS = {
    "CRATON_WF_REGISTRY": "registry.example.com:5000",
    "CRATON_WF_PUBLIC_URL": "http://node1.example.com:7780",
}


def stack_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker CLI")
    if subprocess.run([docker, "stack", "config", "--help"], capture_output=True).returncode:
        pytest.skip("this docker CLI has no 'stack config' (Docker 20.10 or newer has)")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CRATON_WF_", "DOCKER_G"))}
    return subprocess.run(
        [docker, "stack", "config", "-c", str(STACK)],
        capture_output=True,
        text=True,
        env={**clean, **env},
        timeout=60,
        check=False,
    )


def load(env: dict[str, str]) -> dict[str, Any]:
    done = stack_config(env)
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    return load(SETTINGS)


def test_stack_file_is_valid_compose_3_8(stack: dict[str, Any]) -> None:
    assert stack["version"] == "3.8"
    assert set(stack["services"]) == {"api", "runner", "migrate"}


def test_registry_is_required() -> None:
    done = stack_config({"CRATON_WF_PUBLIC_URL": SETTINGS["CRATON_WF_PUBLIC_URL"]})
    assert done.returncode != 0
    assert "set CRATON_WF_REGISTRY" in done.stderr


def test_the_url_tasks_reach_the_api_at_is_required(stack: dict[str, Any]) -> None:
    # Task services are not on the stack's network: the API's service name is no use to them.
    done = stack_config({"CRATON_WF_REGISTRY": "registry.example.com:5000"})
    assert done.returncode != 0
    assert "set CRATON_WF_PUBLIC_URL" in done.stderr
    for service in stack["services"].values():
        assert service["environment"]["CRATON_WF_PUBLIC_URL"] == "http://node1.example.com:7780"


def test_every_service_runs_hardened_with_secrets(stack: dict[str, Any]) -> None:
    for name, service in stack["services"].items():
        assert service["user"].startswith("10001:"), name
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        # Swarm ignores the service-level tmpfs key: /tmp must be a mount.
        assert "tmpfs" not in service, name
        assert {"type": "tmpfs", "target": "/tmp"} in service["volumes"], name
        # Only the runners log in to the registry (pushes, swarm pulls).
        registry = {"craton_wf_registry_password"} if name == "runner" else set()
        assert {s["source"] for s in service["secrets"]} == {
            "craton_wf_database_url",
            "craton_wf_secret_key",
            *registry,
        }, name
        assert "CRATON_WF_REGISTRY_USERNAME" in service["environment"], name
        assert service["environment"]["CRATON_WF_EXECUTOR"] == "swarm", name
        assert service["environment"]["CRATON_WF_REGISTRY"] == "registry.example.com:5000"
        # The secret files become the settings before craton-wf starts.
        script = service["entrypoint"][2]
        assert "/run/secrets/craton_wf_database_url" in script
        assert 'exec craton-wf "$@"' in script
    for secret in stack["secrets"].values():
        assert secret["external"] is True


def test_migrate_runs_once(stack: dict[str, Any]) -> None:
    migrate = stack["services"]["migrate"]
    assert migrate["command"] == ["migrate"]
    assert migrate["deploy"]["replicas"] == 1
    assert migrate["deploy"]["restart_policy"]["condition"] == "on-failure"
    assert migrate["healthcheck"]["disable"] is True


def test_api_serves_without_runner_and_is_health_checked(stack: dict[str, Any]) -> None:
    api = stack["services"]["api"]
    assert api["command"] == ["serve", "--no-runner", "--no-migrate"]
    assert api["ports"] == [{"target": 7780, "published": 7780, "protocol": "tcp"}]
    assert any("/healthz" in part for part in api["healthcheck"]["test"])
    # No engine socket, nothing but memory.
    assert {volume["type"] for volume in api["volumes"]} == {"tmpfs"}


def test_runners_scale_and_stay_on_managers() -> None:
    stack = load({**SETTINGS, "CRATON_WF_RUNNERS": "4", "DOCKER_GID": "105"})
    runner = stack["services"]["runner"]
    # its own /metrics on the stack's network, published nowhere
    assert runner["command"] == ["runner", "--metrics-port", "9180"]
    assert "ports" not in runner
    assert runner["deploy"]["replicas"] == 4
    assert runner["deploy"]["placement"]["constraints"] == ["node.role == manager"]
    assert runner["user"] == "10001:105"
    socket = [v for v in runner["volumes"] if v["target"] == "/var/run/docker.sock"]
    assert socket == [
        {"type": "bind", "source": "/var/run/docker.sock", "target": "/var/run/docker.sock"}
    ]


@pytest.fixture
def swarm_stack(
    docker_client: docker.DockerClient, service_image: str, labels: dict[str, str]
) -> Iterator[str]:
    """The stack deployed on the local swarm (made one if it is not); its name.

    The database is SQLite in each task's /tmp, which is enough for the API to
    start and the migrations to run; no runner is started, since it would have
    a database of its own that nobody migrated.
    """
    if docker_client.info()["Swarm"].get("LocalNodeState") != "active":
        init = ["docker", "swarm", "init", "--advertise-addr", "127.0.0.1"]
        done = subprocess.run(init, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"swarm mode cannot start here: {done.stderr.strip()}")
    if not docker_client.info()["Swarm"].get("ControlAvailable"):
        pytest.skip("the local engine is a Swarm worker; deploying needs a manager")
    name = f"cwf-test-{uuid.uuid4().hex[:8]}"
    secrets = [
        docker_client.secrets.create(
            name=f"{name}-database-url", data=b"sqlite:////tmp/craton-wf.db", labels=labels
        ),
        docker_client.secrets.create(
            name=f"{name}-secret-key", data=base64.urlsafe_b64encode(os.urandom(32)), labels=labels
        ),
        docker_client.secrets.create(name=f"{name}-registry-password", data=b"none", labels=labels),
    ]
    env = {
        **os.environ,
        **SETTINGS,
        "CRATON_WF_IMAGE": service_image,
        "CRATON_WF_RUNNERS": "0",
        "CRATON_WF_API_REPLICAS": "1",
        "CRATON_WF_PUBLISHED_PORT": str(_free_port()),
        "CRATON_WF_DATABASE_URL_SECRET": f"{name}-database-url",
        "CRATON_WF_SECRET_KEY_SECRET": f"{name}-secret-key",
        "CRATON_WF_REGISTRY_PASSWORD_SECRET": f"{name}-registry-password",
    }
    deploy = ["docker", "stack", "deploy", "--resolve-image", "never", "-c", str(STACK), name]
    done = subprocess.run(deploy, capture_output=True, text=True, env=env, timeout=120)
    try:
        assert done.returncode == 0, done.stderr
        yield name
    finally:
        subprocess.run(["docker", "stack", "rm", name], capture_output=True, timeout=120)
        filters = {"label": f"com.docker.stack.namespace={name}"}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            # A secret can go once no container of the stack uses it any more.
            if not docker_client.containers.list(ignore_removed=True, all=True, filters=filters):
                break
            time.sleep(1)
        for secret in secrets:
            with contextlib.suppress(docker.errors.APIError):
                secret.remove()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait(what: str, check: Callable[[], Any], seconds: float = 120) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(1)
    pytest.fail(f"{what}: not after {seconds}s")


@pytest.mark.docker
@pytest.mark.slow
def test_stack_deploys_migrates_once_and_serves_healthz(
    docker_client: docker.DockerClient, swarm_stack: str
) -> None:
    migrate = docker_client.services.get(f"{swarm_stack}_migrate")

    def migrated() -> bool:
        states = [task["Status"]["State"] for task in migrate.tasks()]
        return "complete" in states

    _wait("the migrate service's task completing", migrated)

    def healthy_api() -> Any:
        filters = {"label": f"com.docker.swarm.service.name={swarm_stack}_api"}
        for container in docker_client.containers.list(ignore_removed=True, filters=filters):
            if container.attrs["State"].get("Health", {}).get("Status") == "healthy":
                return container
        return None

    api = _wait("the API task turning healthy", healthy_api)
    probe = (
        "import urllib.request; "
        "print(urllib.request.urlopen('http://127.0.0.1:7780/healthz', timeout=5).read().decode())"
    )
    answer = api.exec_run(["python3", "-c", probe])
    assert answer.exit_code == 0, answer.output
    assert json.loads(answer.output) == {"status": "ok"}
    assert api.exec_run(["id", "-u"]).output.decode().strip() == "10001"
    # Read-only root; /tmp is memory.
    assert api.exec_run(["touch", "/opt/craton-wf/x"]).exit_code != 0
    assert api.exec_run(["touch", "/tmp/x"]).exit_code == 0
    # Migrated once: the task is done and is not started again.
    time.sleep(2)
    assert [task["Status"]["State"] for task in migrate.tasks()].count("complete") == 1
