"""Shipping images through a real registry on loopback: a build is READY only once
the push succeeded, runs use the image by digest, and a failed push fails the build
with a readable log."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import docker
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from craton_wf.builders.image import ImageBuilder
from craton_wf.db.engine import transaction
from craton_wf.db.models import BuildLog, Run, RunLog, Task
from craton_wf.domain.states import BuildStatus, JobStatus
from craton_wf.executors.docker import DockerExecutor
from craton_wf.runner.worker import Runner
from craton_wf.services import jobs as job_service
from tests.factories import approve_current_build, make_inventory
from tests.integration.test_platform import task_files, upload_task, wait_build, wait_job

pytestmark = pytest.mark.docker

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
    ]
)


def start_runner(settings, sessions) -> Runner:  # type: ignore[no-untyped-def]
    worker = Runner(
        settings,
        sessions,
        DockerExecutor.from_settings(settings),
        ImageBuilder.from_settings(settings),
    )
    worker.start()
    return worker


@pytest.fixture
def pushing_runner(settings, sessions, busybox_image, registry) -> Iterator[Runner]:  # type: ignore[no-untyped-def]
    worker = start_runner(
        settings.model_copy(
            update={"executor": "docker", "image_prefix": "craton-rtest", "registry": registry}
        ),
        sessions,
    )
    yield worker
    worker.stop(timeout=20)
    remove_images("craton-rtest/*", f"{registry}/craton-rtest/*")


def remove_images(*references: str) -> None:
    client = docker.from_env()
    for reference in references:
        for image in client.images.list(filters={"reference": reference}):
            client.images.remove(image.id, force=True)


def build_logs(sessions, build_id: int) -> list[str]:  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        return list(
            session.execute(
                select(BuildLog.line).where(BuildLog.build_id == build_id).order_by(BuildLog.seq)
            ).scalars()
        )


def registry_digest(registry: str, repository: str, tag: str) -> str:
    request = urllib.request.Request(
        f"http://{registry}/v2/{repository}/manifests/{tag}",
        method="HEAD",
        headers={"Accept": MANIFEST_TYPES},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.headers["Docker-Content-Digest"]


def test_a_build_is_pushed_and_runs_use_it_by_digest(sessions, root, pushing_runner, registry):  # type: ignore[no-untyped-def]
    task_id = upload_task(sessions, root, "shipped", task_files("shipped", lines=2))
    build = wait_build(sessions, task_id)
    assert build.status == BuildStatus.READY, build.error

    remote, digest = build.image.split("@")
    assert remote.startswith(f"{registry}/craton-rtest/")
    assert digest == build.digest and digest.startswith("sha256:")
    tag = str(build.number)
    assert registry_digest(registry, remote.split("/", 1)[1], tag) == digest
    lines = build_logs(sessions, build.id)
    assert f"pushing {remote}:{tag}" in lines
    assert lines[-1] == f"pushed {build.image}"
    with transaction(sessions) as session:
        assert session.get(Task, task_id).ready_build_id == build.id

    # The registry serves what was pushed: the tag's manifest names the same digest.
    with urllib.request.urlopen(f"http://{registry}/v2/_catalog", timeout=10) as answer:
        assert remote.split("/", 1)[1] in json.load(answer)["repositories"]

    with transaction(sessions) as session:
        approve_current_build(session, task_id)
        hosts = make_inventory(session, root.project_id, 2)
        job_id = job_service.create_job(
            session, root.project_id, None, {"task": "shipped", "hosts": [h.id for h in hosts]}
        ).id
    pushing_runner.wakeup.set()
    assert wait_job(sessions, job_id).status == JobStatus.SUCCEEDED
    with transaction(sessions) as session:
        runs = list(session.execute(select(Run).where(Run.job_id == job_id)).scalars())
        first = session.execute(
            select(RunLog.line)
            .where(RunLog.run_id == runs[0].id, RunLog.stream == "stdout")
            .order_by(RunLog.seq)
        ).scalars()
        assert "shipped line 2" in list(first)
    assert {run.image for run in runs} == {build.image}


def test_a_failed_push_fails_the_build_with_a_readable_log(settings, sessions, root, busybox_image):  # type: ignore[no-untyped-def]
    unreachable = "127.0.0.1:9"  # discard port: nothing accepts connections there
    worker = start_runner(
        settings.model_copy(
            update={"executor": "docker", "image_prefix": "craton-rtest", "registry": unreachable}
        ),
        sessions,
    )
    try:
        task_id = upload_task(sessions, root, "unshipped", task_files("unshipped"))
        build = wait_build(sessions, task_id)
    finally:
        worker.stop(timeout=20)
        remove_images("craton-rtest/*", f"{unreachable}/craton-rtest/*")
    assert build.status == BuildStatus.FAILED
    assert build.error.startswith(f"pushing {unreachable}/craton-rtest/")
    assert "connection refused" in build.error.lower()
    lines = build_logs(sessions, build.id)
    assert any(line.startswith("Successfully built") for line in lines)  # built, not shipped
    assert lines[-1].startswith("ERROR: pushing")
    with transaction(sessions) as session:
        assert session.get(Task, task_id).ready_build_id is None


@pytest.fixture
def locked_registry(tmp_path) -> Iterator[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    """A second registry on loopback that needs a login: (address, user, password)."""
    import shutil
    import socket
    import subprocess
    import time

    import bcrypt

    if not shutil.which("docker-registry"):
        pytest.skip("no docker-registry (scripts/start-registry.sh installs it)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    user, password = "shipper", "s3cret-registry-pw"
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
    (tmp_path / "htpasswd").write_text(f"{user}:{hashed}\n")
    (tmp_path / "config.yml").write_text(
        "version: 0.1\nlog:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {tmp_path / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
        f"auth:\n  htpasswd:\n    realm: craton-test\n    path: {tmp_path / 'htpasswd'}\n"
    )
    process = subprocess.Popen(
        ["docker-registry", "serve", str(tmp_path / "config.yml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    address = f"127.0.0.1:{port}"
    try:
        for _ in range(50):
            try:
                urllib.request.urlopen(f"http://{address}/v2/", timeout=1)
            except urllib.error.HTTPError as answer:
                if answer.code == 401:
                    break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("the locked registry did not start")
        yield address, user, password
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_registry_credentials_come_from_the_settings(
    settings, sessions, root, busybox_image, locked_registry
):  # type: ignore[no-untyped-def]
    address, user, password = locked_registry
    base = settings.model_copy(
        update={"executor": "docker", "image_prefix": "craton-rtest", "registry": address}
    )
    without = start_runner(base, sessions)
    try:
        refused = wait_build(sessions, upload_task(sessions, root, "nologin", task_files("n")))
    finally:
        without.stop(timeout=20)
    assert refused.status == BuildStatus.FAILED
    assert "no basic auth credentials" in refused.error or "unauthorized" in refused.error.lower()

    with_login = start_runner(
        base.model_copy(
            update={"registry_username": user, "registry_password": SecretStr(password)}
        ),
        sessions,
    )
    try:
        shipped = wait_build(sessions, upload_task(sessions, root, "login", task_files("l")))
    finally:
        with_login.stop(timeout=20)
        remove_images("craton-rtest/*", f"{address}/craton-rtest/*")
    assert shipped.status == BuildStatus.READY, shipped.error
    assert shipped.image.startswith(f"{address}/craton-rtest/") and "@sha256:" in shipped.image
    assert password not in "\n".join(
        build_logs(sessions, shipped.id) + build_logs(sessions, refused.id)
    )
