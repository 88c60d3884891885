"""Choosing the executor: `craton-wf runner` and `serve` refuse to start, with a clear
message, when the executor's runtime cannot be reached or is not what it needs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def run_cli(tmp_path: Path, command: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "craton_wf.cli", command],
        env={
            **os.environ,
            "CRATON_WF_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
            "CRATON_WF_DATA_DIR": str(tmp_path / "data"),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("executor", ["docker", "swarm"])
def test_an_unreachable_engine_is_refused_at_start(tmp_path: Path, executor: str) -> None:
    run_cli(tmp_path, "migrate")
    done = run_cli(
        tmp_path,
        "runner",
        CRATON_WF_EXECUTOR=executor,
        CRATON_WF_DOCKER_BASE_URL="tcp://127.0.0.1:9",
    )
    assert done.returncode == 1
    assert done.stderr.startswith("ERROR: cannot reach the Docker engine at tcp://127.0.0.1:9")


def test_an_unknown_executor_is_refused(tmp_path: Path) -> None:
    done = run_cli(tmp_path, "runner", CRATON_WF_EXECUTOR="nomad")
    assert done.returncode != 0
    assert "executor" in done.stderr and "nomad" in done.stderr
    assert "Traceback" not in done.stderr


def _kubeconfig(tmp_path: Path, server: str) -> Path:
    from tests.kubernetes.test_kubernetes_platform import write_kubeconfig

    return write_kubeconfig(tmp_path / "kubeconfig", server, "craton")


def test_an_unreachable_cluster_is_refused_at_start(tmp_path: Path) -> None:
    run_cli(tmp_path, "migrate")
    done = run_cli(
        tmp_path,
        "runner",
        CRATON_WF_EXECUTOR="kubernetes",
        CRATON_WF_KUBERNETES_KUBECONFIG=str(_kubeconfig(tmp_path, "http://127.0.0.1:9")),
        CRATON_WF_KUBERNETES_CONTEXT="craton",
    )
    assert done.returncode == 1, done.stderr
    last = done.stderr.strip().splitlines()[-1]  # after the client's own retry warnings
    assert last.startswith("ERROR: ") and "127.0.0.1:9" in last
    assert "Traceback" not in done.stderr


def test_a_cluster_runner_without_a_docker_engine_to_build_with_is_refused(
    tmp_path: Path,
) -> None:
    from tests.kubefake import FakeKubernetes

    run_cli(tmp_path, "migrate")
    with FakeKubernetes() as cluster:
        done = run_cli(
            tmp_path,
            "runner",
            CRATON_WF_EXECUTOR="kubernetes",
            CRATON_WF_KUBERNETES_KUBECONFIG=str(_kubeconfig(tmp_path, cluster.url)),
            CRATON_WF_KUBERNETES_CONTEXT="craton",
            CRATON_WF_DOCKER_BASE_URL="tcp://127.0.0.1:9",
        )
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith(
        "ERROR: cannot reach the Docker engine that builds task images at tcp://127.0.0.1:9"
    )


@pytest.mark.parametrize("engine", ["reachable", "unreachable"])
def test_a_fake_executor_runner_builds_with_docker_or_fails_the_build_saying_why(
    tmp_path: Path, sessions, root, database_url: str, busybox_image: str, engine: str
) -> None:
    """A runner whose executor is fake still builds tasks with the Docker engine;
    with none to reach, the build fails saying builds need one (never BUILD PENDING)."""
    import docker

    from craton_wf.db.models import Build
    from tests.integration.test_platform import upload_task, wait_build

    files = {"Dockerfile": f"FROM {busybox_image}\nRUN true\n"}
    task_id = upload_task(sessions, root, "built-by-fake", files)
    env = {
        **os.environ,
        "CRATON_WF_DATABASE_URL": database_url,
        "CRATON_WF_DATA_DIR": str(tmp_path / "data"),
        "CRATON_WF_EXECUTOR": "fake",
        "CRATON_WF_IMAGE_PREFIX": "craton-e2e-fake",
        "CRATON_WF_RUNNER_POLL_SECONDS": "0.1",
    }
    if engine == "unreachable":
        env["CRATON_WF_DOCKER_BASE_URL"] = "tcp://127.0.0.1:9"
    log = (tmp_path / "runner.log").open("wb")
    runner = subprocess.Popen(
        [sys.executable, "-m", "craton_wf.cli", "runner"], env=env, stdout=log, stderr=log
    )
    try:
        build: Build = wait_build(sessions, task_id)
        assert runner.poll() is None, (tmp_path / "runner.log").read_text()
    finally:
        runner.terminate()
        runner.wait(timeout=30)
        client = docker.from_env()
        for image in client.images.list(filters={"reference": "craton-e2e-fake/*"}):
            client.images.remove(image.id, force=True)
    if engine == "reachable":
        assert build.status == "READY", build.error
        assert build.image and build.image.startswith("craton-e2e-fake/")
    else:
        assert build.status == "BUILD FAILED"
        assert build.error.startswith(
            "builds need a Docker engine: cannot reach the Docker engine that builds task "
            "images at tcp://127.0.0.1:9"
        ), build.error
