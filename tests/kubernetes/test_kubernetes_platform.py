"""The runner and the API with the Kubernetes executor: a job's logs and exit codes land in
the database; settings reach the cluster through a kubeconfig; ``/readyz`` says whether
the cluster answers."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import select

from craton_wf.api.app import create_app
from craton_wf.db.engine import transaction
from craton_wf.db.models import JobHost, Run, RunLog
from craton_wf.executors import make_executor
from craton_wf.executors.kubernetes import KubernetesExecutor
from craton_wf.runner.worker import Runner
from craton_wf.services import jobs as job_service
from craton_wf.services import workflows as workflow_service
from craton_wf.services.inputs import WorkflowCreate
from craton_wf.settings import Settings
from tests.factories import make_inventory, make_ready_task
from tests.integration.test_platform import wait_job
from tests.kubefake import FakeKubernetes
from tests.kubernetes.conftest import IMAGE
from tests.kubernetes.conftest import make_executor as make_test_executor

pytestmark = pytest.mark.timeout(180)

GREET = """sh -c 'echo "hello from the cluster"; printf "%s\\n" "$1"' sh"""
FAIL = """sh -c 'echo "about to fail" >&2; exit 3' sh"""


def test_a_job_runs_as_kubernetes_jobs_and_its_logs_and_codes_are_stored(
    cluster: FakeKubernetes | None, settings: Settings, sessions: Any, root: Any
) -> None:
    with transaction(sessions) as session:
        (host,) = make_inventory(session, root.project_id, 1)
        make_ready_task(session, root.project_id, "greet", command=GREET, image=IMAGE)
        make_ready_task(session, root.project_id, "fail", command=FAIL, image=IMAGE)
        workflow_service.create_workflow(
            session,
            root.project_id,
            None,
            WorkflowCreate.model_validate({"name": "wf", "steps": ["greet", "fail"]}),
        )
        job_id = job_service.create_job(
            session, root.project_id, None, {"workflow": "wf", "hosts": [host.id]}
        ).id
    executor = make_test_executor(cluster)
    runner = Runner(settings, sessions, executor)
    runner.start()
    try:
        job = wait_job(sessions, job_id)
    finally:
        runner.stop(timeout=30)
        executor.close()

    assert job.status == "FAILED"
    with transaction(sessions) as session:
        runs = {
            run.step_name: run
            for run in session.execute(select(Run).where(Run.job_id == job_id)).scalars()
        }
        assert {name: (run.status, run.exit_code) for name, run in runs.items()} == {
            "greet": ("SUCCEEDED", 0),
            "fail": ("FAILED", 3),
        }
        logs = {
            name: [
                (log.stream, log.line)
                for log in session.execute(
                    select(RunLog).where(RunLog.run_id == run.id).order_by(RunLog.seq)
                ).scalars()
            ]
            for name, run in runs.items()
        }
        host_name = session.execute(select(JobHost.host_name)).scalar_one()
    greeting = [line for stream, line in logs["greet"] if stream == "stdout"]
    assert greeting[0] == "hello from the cluster"
    assert json.loads(greeting[1])["host"]["name"] == host_name
    assert ("stdout", "about to fail") in logs["fail"]
    if cluster is not None:  # removed once stored: no Job or pod is left behind
        assert cluster.objects("jobs") == []
        deadline = time.monotonic() + 30
        while cluster.objects("pods") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert cluster.objects("pods") == []
        assert [m["metadata"]["labels"]["craton.step"] for m in cluster.created] == [
            "greet",
            "fail",
        ]


def write_kubeconfig(path: Path, server: str, namespace: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "fake", "cluster": {"server": server}}],
                "users": [{"name": "tester", "user": {"token": "not-checked"}}],
                "contexts": [
                    {"name": "other", "context": {"cluster": "fake", "user": "tester"}},
                    {
                        "name": "craton",
                        "context": {"cluster": "fake", "user": "tester", "namespace": namespace},
                    },
                ],
                "current-context": "other",
            }
        )
    )
    return path


def test_settings_choose_the_executor_its_kubeconfig_context_and_namespace(
    fake: FakeKubernetes, tmp_path: Path
) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "config", fake.url, "runs")
    settings = Settings(
        executor="kubernetes",
        kubernetes_kubeconfig=str(kubeconfig),
        kubernetes_context="craton",
        kubernetes_image_pull_secrets=["regcred"],
        kubernetes_ttl_seconds_after_finished=120,
        kubernetes_service_account="craton-task",
    )

    executor = make_executor(settings)
    assert isinstance(executor, KubernetesExecutor)
    try:
        executor.ping()
        assert executor.namespace == "runs"
        assert executor.options.image_pull_secrets == ("regcred",)
        assert executor.options.ttl_seconds_after_finished == 120
        assert executor.options.service_account == "craton-task"
    finally:
        executor.close()
    assert ("GET", "/apis/batch/v1/namespaces/runs/jobs") in fake.requests


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRATON_WF_EXECUTOR", "kubernetes")
    monkeypatch.setenv("CRATON_WF_KUBERNETES_NAMESPACE", "craton-runs")
    monkeypatch.setenv("CRATON_WF_KUBERNETES_IMAGE_PULL_SECRETS", '["regcred", "mirror"]')
    monkeypatch.setenv("CRATON_WF_KUBERNETES_IN_CLUSTER", "true")

    settings = Settings()

    assert settings.executor == "kubernetes"
    assert settings.kubernetes_namespace == "craton-runs"
    assert settings.kubernetes_image_pull_secrets == ["regcred", "mirror"]
    assert settings.kubernetes_in_cluster is True


def test_readyz_reports_whether_the_cluster_answers(
    fake: FakeKubernetes, settings: Settings, sessions: Any, tmp_path: Path
) -> None:
    reachable = settings.model_copy(
        update={
            "executor": "kubernetes",
            "kubernetes_kubeconfig": str(write_kubeconfig(tmp_path / "up", fake.url, "runs")),
        }
    )
    unreachable = settings.model_copy(
        update={
            "executor": "kubernetes",
            "kubernetes_kubeconfig": str(
                write_kubeconfig(tmp_path / "down", "http://127.0.0.1:9", "runs")
            ),
        }
    )

    with TestClient(create_app(reachable, sessions)) as client:
        up = client.get("/readyz").json()["checks"]["executor"]
    with TestClient(create_app(unreachable, sessions)) as client:
        down = client.get("/readyz")

    assert up == {"name": "kubernetes", "status": "ok"}
    assert down.status_code == 503
    status = down.json()["checks"]["executor"]["status"]
    assert status.startswith("error: could not reach the Kubernetes API at http://127.0.0.1:9")
    assert "Connection refused" in status


# --- timeouts, cancel and a killed runner, through the platform ---------------------


def _job_on_the_cluster(sessions: Any, root: Any, command: str, **step: Any) -> int:
    with transaction(sessions) as session:
        (host,) = make_inventory(session, root.project_id, 1)
        make_ready_task(session, root.project_id, "step", command=command, image=IMAGE)
        workflow_service.create_workflow(
            session,
            root.project_id,
            None,
            WorkflowCreate.model_validate({"name": "wf", "steps": [{"task": "step", **step}]}),
        )
        return job_service.create_job(
            session, root.project_id, None, {"workflow": "wf", "hosts": [host.id]}
        ).id


def _runs(sessions: Any, job_id: int) -> list[Run]:
    with transaction(sessions) as session:
        return list(session.execute(select(Run).where(Run.job_id == job_id)).scalars())


def _wait_running(sessions: Any, job_id: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with transaction(sessions) as session:
            if session.execute(select(RunLog).where(RunLog.job_id == job_id)).first():
                return
        time.sleep(0.1)
    raise AssertionError("the run never printed")


def test_a_step_timeout_is_the_jobs_deadline_and_the_run_times_out(
    fake: FakeKubernetes, settings: Settings, sessions: Any, root: Any
) -> None:
    job_id = _job_on_the_cluster(sessions, root, "sh -c 'echo started; sleep 300' sh", timeout=2)
    executor = make_test_executor(fake)
    runner = Runner(settings, sessions, executor)
    runner.start()
    try:
        job = wait_job(sessions, job_id, timeout=60)
    finally:
        runner.stop(timeout=30)
        executor.close()
    assert job.status == "FAILED"
    (run,) = _runs(sessions, job_id)
    assert run.status == "TIMED_OUT"
    (manifest,) = fake.created
    assert manifest["spec"]["activeDeadlineSeconds"] == 2
    assert fake.objects("jobs") == []


def test_cancel_deletes_the_running_kubernetes_job(
    fake: FakeKubernetes, settings: Settings, sessions: Any, root: Any
) -> None:
    job_id = _job_on_the_cluster(sessions, root, "sh -c 'echo started; sleep 300' sh")
    executor = make_test_executor(fake)
    runner = Runner(settings, sessions, executor)
    runner.start()
    try:
        _wait_running(sessions, job_id)
        assert len(fake.objects("jobs")) == 1
        started = time.monotonic()
        with transaction(sessions) as session:
            job_service.cancel(session, job_service.get_job(session, root.project_id, job_id))
        job = wait_job(sessions, job_id, timeout=60)
    finally:
        runner.stop(timeout=30)
        executor.close()
    assert job.status == "CANCELLED"
    assert time.monotonic() - started < settings.stop_grace_seconds + 15
    assert [run.status for run in _runs(sessions, job_id)] == ["CANCELLED"]
    assert fake.objects("jobs") == []


COUNT = "; ".join(f'echo "n {i}"; sleep 0.05' for i in range(1, 41))


@pytest.mark.parametrize("fault_point", ["after_start", "mid_logs", "before_finish"])
def test_a_killed_runners_kubernetes_job_is_adopted_and_its_log_is_whole(
    fake: FakeKubernetes,
    database_url: str,
    sessions: Any,
    root: Any,
    tmp_path: Path,
    fault_point: str,
) -> None:
    from tests.integration.test_durability import Runners

    job_id = _job_on_the_cluster(sessions, root, f"sh -c '{COUNT}' sh")
    runners = Runners(database_url, tmp_path)
    runners.env.update(
        {
            "CRATON_WF_EXECUTOR": "kubernetes",
            "CRATON_WF_KUBERNETES_KUBECONFIG": str(
                write_kubeconfig(tmp_path / "kubeconfig", fake.url, "craton-test")
            ),
            "CRATON_WF_KUBERNETES_CONTEXT": "craton",
        }
    )
    try:
        first = runners.start("one", CRATON_WF_FAULT_POINT=fault_point)
        assert first.wait(timeout=60) == -9, runners.log("one")  # SIGKILLed itself
        runners.start("two")
        job = wait_job(sessions, job_id, timeout=90)
    finally:
        runners.stop_all()
    (run,) = _runs(sessions, job_id)
    assert job.status == "SUCCEEDED", (run.status, run.error, run.exit_code)
    assert (run.attempt, run.lease_epoch) == (1, 2)
    assert [m["metadata"]["name"] for m in fake.created] == [run.container_name]  # one Job
    with transaction(sessions) as session:
        lines = [
            log.line
            for log in session.execute(
                select(RunLog).where(RunLog.run_id == run.id).order_by(RunLog.seq)
            ).scalars()
            if log.stream != "system"
        ]
    assert lines == [f"n {i}" for i in range(1, 41)]
