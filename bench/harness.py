"""Shared setup of the benchmarks: a migrated database, inventory, a READY task, a runner.

Benchmarks run the real platform in one process (services, runner, executor,
database) and compare it with raw ``docker`` commands measured in the same run.
"""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from craton_wf.db.engine import make_engine, make_session_factory, transaction
from craton_wf.db.migrate import upgrade
from craton_wf.db.models import Job, User, utcnow
from craton_wf.domain.states import FINAL_JOB_STATES
from craton_wf.engine import builds as build_service
from craton_wf.executors import make_executor
from craton_wf.runner.worker import Runner
from craton_wf.services import approvals, inventory
from craton_wf.services import jobs as job_service
from craton_wf.services import tasks as task_service
from craton_wf.services import workflows as workflow_service
from craton_wf.services.auth import Principal, bootstrap
from craton_wf.services.inputs import TaskCreate, WorkflowCreate
from craton_wf.settings import Settings

IMAGE = "craton/busybox:latest"


@dataclass
class Platform:
    settings: Settings
    sessions: Any
    project_id: str
    runner: Runner | None = None

    def start_runner(self) -> None:
        self.runner = Runner(self.settings, self.sessions, make_executor(self.settings))
        self.runner.start()

    def stop(self) -> None:
        if self.runner is not None:
            self.runner.stop()


def make_platform(
    database_url: str | None = None, executor: str = "docker", **settings: Any
) -> Platform:
    workdir = Path(tempfile.mkdtemp(prefix="craton-bench-"))
    url = fresh_database(database_url) if database_url else f"sqlite:///{workdir / 'bench.db'}"
    options: dict[str, Any] = {"runner_poll_seconds": 0.2, **settings}
    config = Settings(database_url=url, data_dir=workdir, executor=executor, **options)
    upgrade(config)
    sessions = make_session_factory(make_engine(config))
    with transaction(sessions) as session:
        project_id = bootstrap(session, "bench", "bench").project.id
    return Platform(config, sessions, project_id)


def fresh_database(server_url: str) -> str:
    """A new, empty PostgreSQL database on the server of ``server_url``."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"craton_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def add_hosts(platform: Platform, count: int) -> list[int]:
    with transaction(platform.sessions) as session:
        cloud = inventory.create_cloud(session, platform.project_id, {"name": "c"})
        region = inventory.create_region(
            session, platform.project_id, {"name": "r", "cloud_id": cloud.id}
        )
        return [
            inventory.create_host(
                session,
                platform.project_id,
                {
                    "name": f"h{i:04d}",
                    "ip_address": f"10.{i // 250}.{i % 250}.1",
                    "region_id": region.id,
                },
            ).id
            for i in range(count)
        ]


def add_ready_task(platform: Platform, name: str, command: str, image: str = IMAGE) -> None:
    """A task whose READY build is the given image, approved by a second admin (the
    build itself is not measured)."""
    with transaction(platform.sessions) as session:
        task = task_service.create_task(
            session,
            platform.project_id,
            None,
            TaskCreate(name=name, location="https://example.invalid/bench", command=command),
            None,
            1024,
        )
        claim = build_service.claim_next_build(session, "bench", 60)
        assert claim is not None
        build_service.finish_build(
            session,
            claim.build_id,
            "bench",
            claim.epoch,
            image=image,
            digest="sha256:" + hashlib.sha256(image.encode()).hexdigest(),  # what is approved
        )
        approver = User(name=f"approver-{name}", default_project_id=platform.project_id)
        session.add(approver)
        session.flush()
        admin = Principal(
            user_id=approver.id,
            user_name=approver.name,
            project_id=platform.project_id,
            roles=frozenset({"admin"}),
        )
        approvals.decide(session, admin, task, "approved")


def add_workflow(platform: Platform, name: str, steps: list[Any]) -> None:
    with transaction(platform.sessions) as session:
        workflow_service.create_workflow(
            session,
            platform.project_id,
            None,
            WorkflowCreate.model_validate({"name": name, "steps": steps}),
        )


@dataclass(frozen=True)
class JobTiming:
    created: float  # seconds to create the job (one transaction, as the API does)
    dispatched: float  # seconds from the committed job to its end (the runners' work)
    status: str

    @property
    def total(self) -> float:
        return self.created + self.dispatched


def time_job(
    platform: Platform,
    timeout: float = 1800,
    wake: bool = True,
    on_created: Callable[[], None] = lambda: None,
    **spec: Any,
) -> JobTiming:
    """Create a job and wait for it.

    The end is the job's ``finished_at``, stamped by the runner that finished
    it, so the figure does not depend on how often this process looks; it looks
    ten times a second, to take little of the machine from what is measured.
    """
    start = time.perf_counter()
    with transaction(platform.sessions) as session:
        job_id = job_service.create_job(session, platform.project_id, None, spec).id
    created, committed_at = time.perf_counter() - start, utcnow()
    on_created()
    if wake:
        assert platform.runner is not None
        platform.runner.wakeup.set()
    final = {s.value for s in FINAL_JOB_STATES}
    while time.perf_counter() - start < timeout:
        with transaction(platform.sessions) as session:
            status, finished_at = session.execute(
                select(Job.status, Job.finished_at).where(Job.id == job_id)
            ).one()
        if status in final:
            assert finished_at is not None
            dispatched = (finished_at - committed_at).total_seconds()
            return JobTiming(created, dispatched, status)
        time.sleep(0.1)
    raise TimeoutError(f"job {job_id} did not finish in {timeout}s")


def run_job(
    platform: Platform, timeout: float = 1800, wake: bool = True, **spec: Any
) -> tuple[float, str]:
    """Create a job and wait for it; seconds from creation to its end, and its status."""
    timing = time_job(platform, timeout, wake, **spec)
    return timing.total, timing.status


def timed_shell(command: str) -> float:
    start = time.perf_counter()
    subprocess.run(command, shell=True, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def docker_run(args: str) -> str:
    return f"docker run --rm {IMAGE} {args}"


def ensure_image() -> None:
    if subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True).returncode:
        subprocess.run(["scripts/make-base-images.sh", "--only", "busybox"], check=True)


def report(name: str, ours: float, baseline: float, target: float, unit_note: str) -> bool:
    ratio = ours / baseline
    verdict = "OK" if ratio <= target else "OVER TARGET"
    print(
        f"{name}: craton-wf {ours:.2f}s, baseline {baseline:.2f}s ({unit_note}); "
        f"ratio {ratio:.3f} (target <= {target:.2f}) {verdict}"
    )
    return ratio <= target


def wait_until_ready(process: subprocess.Popen[bytes], url: str, log: Path, timeout: float) -> None:
    """Return once ``craton-wf serve`` at ``url`` answers /readyz with 200; kill it
    and raise with its log if it exits or is not ready within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"serve did not become ready:\n{log.read_text()}")
        time.sleep(0.2)
