"""The Kubernetes executor through the official client, against the fake API server
(or the cluster of ``CRATON_WF_TEST_KUBECONFIG``): the contract the Docker executor's
tests hold it to, plus what Kubernetes adds (deadline, Job and pod cleanup, adoption)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC
from typing import Any

import kubernetes.client
import pytest

from craton_wf.errors import ContainerNotFound, ExecutorError
from craton_wf.executors.base import ContainerSpec, ContainerState, Limits, LogLine
from craton_wf.executors.kubemanifest import JobOptions, job_name
from craton_wf.executors.kubernetes import (
    DEADLINE_EXIT_CODE,
    KILLED_EXIT_CODE,
    NO_EXIT_CODE,
    KubernetesExecutor,
)
from tests.kubefake import FakeKubernetes
from tests.kubernetes.conftest import Runner, make_executor

pytestmark = pytest.mark.timeout(180)


def texts(lines: list[LogLine], stream: str = "stdout") -> list[str]:
    return [line.text for line in lines if line.stream == stream]


def eventually(check: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def job_exists(api: tuple[Any, Any], executor: KubernetesExecutor, name: str) -> bool:
    return any(
        job.metadata.name == name for job in api[0].list_namespaced_job(executor.namespace).items
    )


def pods_of(api: tuple[Any, Any], executor: KubernetesExecutor, name: str) -> list[Any]:
    return api[1].list_namespaced_pod(executor.namespace, label_selector=f"job-name={name}").items


@pytest.fixture
def quick(cluster: FakeKubernetes | None) -> Iterator[KubernetesExecutor]:
    """An executor whose pods get one second between SIGTERM and SIGKILL."""
    executor = make_executor(cluster, options=JobOptions(termination_grace_seconds=1))
    yield executor
    executor.close()


def test_ping(executor: KubernetesExecutor) -> None:
    executor.ping()


def test_ping_of_an_unreachable_api_server_says_so() -> None:
    configuration = kubernetes.client.Configuration()
    configuration.host = "http://127.0.0.1:9"
    executor = KubernetesExecutor(configuration=configuration, namespace="default")

    with pytest.raises(ExecutorError, match=r"Kubernetes API at http://127\.0\.0\.1:9.*refused"):
        executor.ping()


def test_a_missing_kubeconfig_says_which(tmp_path: Any) -> None:
    executor = KubernetesExecutor(kubeconfig=str(tmp_path / "nowhere"), in_cluster=False)

    with pytest.raises(ExecutorError, match="Kubernetes configuration from kubeconfig .*nowhere"):
        executor.ping()


def test_numbered_lines_arrive_in_order_and_a_last_line_without_newline(
    executor: KubernetesExecutor, run: Runner
) -> None:
    script = "; ".join(f'echo "line {i}"' for i in range(1, 201)) + "; printf 'the end'"
    handle = run(script)

    lines = list(executor.logs(handle))

    assert texts(lines) == [f"line {i}" for i in range(1, 201)] + ["the end"]
    assert all(line.ts.utcoffset() == UTC.utcoffset(None) for line in lines)
    assert [line.ts for line in lines] == sorted(line.ts for line in lines)
    assert executor.wait(handle, timeout=60) == 0


def test_stderr_is_merged_into_the_one_log(executor: KubernetesExecutor, run: Runner) -> None:
    handle = run("echo to-out; echo to-err >&2; sleep 0.2; echo again-err >&2; echo again-out")

    lines = list(executor.logs(handle))

    assert texts(lines) == ["to-out", "to-err", "again-err", "again-out"]
    assert {line.stream for line in lines} == {"stdout"}


def test_a_40_kib_line_comes_back_whole(executor: KubernetesExecutor, run: Runner) -> None:
    handle = run(
        f"echo before; echo {'x' * 40960}; printf '\\303\\251t\\303\\251 \\377\\n'; echo after"
    )

    lines = texts(list(executor.logs(handle)))

    assert lines == ["before", "x" * 40960, "été \ufffd", "after"]


def test_logs_of_a_running_job_follow_until_it_exits(
    executor: KubernetesExecutor, run: Runner
) -> None:
    handle = run("echo first; sleep 1.5; echo second")

    started = time.monotonic()
    lines = list(executor.logs(handle))

    assert texts(lines) == ["first", "second"]
    assert time.monotonic() - started >= 1.0
    assert eventually(lambda: executor.find(handle.name).state == ContainerState.EXITED)  # type: ignore[union-attr]


@pytest.mark.parametrize("code", [0, 3])
def test_exit_codes(executor: KubernetesExecutor, run: Runner, code: int) -> None:
    handle = run(f"echo bye; exit {code}")

    assert executor.wait(handle, timeout=60) == code


def test_wait_returns_none_on_timeout(executor: KubernetesExecutor, run: Runner) -> None:
    handle = run("sleep 30")

    started = time.monotonic()
    assert executor.wait(handle, timeout=0.5) is None
    assert time.monotonic() - started < 5


def test_find_reports_created_running_exited_with_the_labels_as_given(
    executor: KubernetesExecutor, make_spec: Callable[..., ContainerSpec]
) -> None:
    spec = make_spec("sleep 1", labels={"craton.run": "42", "craton.step": "Patch & reboot!"})
    assert executor.find(spec.name) is None
    handle = executor.create(spec)
    try:
        found = executor.find(spec.name)
        assert found is not None
        assert (found.id, found.name, found.state) == (handle.id, spec.name, ContainerState.CREATED)
        assert found.labels == {**spec.labels, "craton.managed": "true"}

        executor.start(handle)
        assert executor.find(spec.name).state == ContainerState.RUNNING  # type: ignore[union-attr]
        executor.start(handle)  # starting a started Job changes nothing

        assert executor.wait(handle, timeout=60) == 0
        assert eventually(lambda: executor.find(spec.name).state == ContainerState.EXITED)  # type: ignore[union-attr]
    finally:
        executor.remove(handle)
    assert eventually(lambda: executor.find(spec.name) is None)


def test_managed_lists_the_jobs_of_runs_with_the_labels_as_given(
    executor: KubernetesExecutor,
    make_spec: Callable[..., ContainerSpec],
    session_label: dict[str, str],
) -> None:
    created = executor.create(make_spec("true", labels={"craton.step": "Patch & reboot!"}))
    ran = executor.create(make_spec("true"))
    other = executor.create(replace(make_spec("true"), labels=session_label))  # no run uid
    try:
        executor.start(ran)
        assert executor.wait(ran, timeout=60) == 0

        def ours() -> dict[str, Any]:
            return {
                h.id: h
                for h in executor.managed()
                if h.labels.get("craton.test") == session_label["craton.test"]
            }

        assert set(ours()) == {created.id, ran.id}
        assert ours()[created.id].name == created.name
        assert ours()[created.id].labels == created.labels  # not the cut label values
        assert ours()[created.id].state == ContainerState.CREATED
        assert eventually(lambda: ours()[ran.id].state == ContainerState.EXITED)
    finally:
        for handle in (created, ran, other):
            executor.remove(handle)
    assert eventually(lambda: not {h.id for h in executor.managed()} & {created.id, ran.id})


def test_find_matches_the_whole_name_only(
    executor: KubernetesExecutor, make_spec: Callable[..., ContainerSpec]
) -> None:
    spec = make_spec("true")
    handle = executor.create(spec)
    try:
        assert executor.find(spec.name[:-2]) is None
        assert executor.find(spec.name + "x") is None
        assert executor.find(handle.id) is None
    finally:
        executor.remove(handle)


def test_since_resumes_after_the_lines_already_read(
    executor: KubernetesExecutor, run: Runner
) -> None:
    handle = run("; ".join(f'echo "line {i}"; sleep 0.02' for i in range(1, 21)))
    everything = list(executor.logs(handle))
    assert len(everything) == 20
    cut = everything[9].ts

    resumed = list(executor.logs(handle, since=cut))

    assert resumed == [line for line in everything if line.ts > cut]
    assert texts(resumed) == [f"line {i}" for i in range(11, 21)]


def test_another_executor_adopts_a_running_job_and_reads_the_rest(
    cluster: FakeKubernetes | None,
    executor: KubernetesExecutor,
    make_spec: Callable[..., ContainerSpec],
) -> None:
    spec = make_spec("echo one; echo two; sleep 1.5; echo three; exit 4")
    handle = executor.create(spec)
    executor.start(handle)
    first = executor.logs(handle)
    read = [next(first), next(first)]
    first.close()  # this runner dies here
    executor.close()

    adopter = make_executor(cluster)
    try:
        found = adopter.find(spec.name)
        assert found is not None
        assert found.state == ContainerState.RUNNING
        assert (found.id, found.labels["craton.run-uid"]) == (
            handle.id,
            spec.labels["craton.run-uid"],
        )
        rest = list(adopter.logs(found, since=read[-1].ts))
        assert texts(read) + texts(rest) == ["one", "two", "three"]
        assert adopter.wait(found, timeout=60) == 4
    finally:
        adopter.remove(found or handle)
        adopter.close()


def test_stop_kills_a_container_that_ignores_sigterm_after_the_grace_and_deletes_the_job(
    executor: KubernetesExecutor, run: Runner, api: tuple[Any, Any]
) -> None:
    handle = run("echo ready; exec sleep 60")  # pid 1 without a handler: SIGTERM does nothing
    lines: list[LogLine] = []
    reader = threading.Thread(target=lambda: lines.extend(executor.logs(handle)))
    reader.start()
    assert eventually(lambda: texts(lines) == ["ready"])

    started = time.monotonic()
    executor.stop(handle, grace_seconds=1)
    elapsed = time.monotonic() - started

    assert 0.8 <= elapsed < 40
    assert executor.wait(handle, timeout=60) == KILLED_EXIT_CODE
    reader.join(timeout=30)
    assert not reader.is_alive()
    assert eventually(lambda: not job_exists(api, executor, handle.name))
    assert eventually(lambda: not pods_of(api, executor, handle.name))
    executor.stop(handle, grace_seconds=1)  # already stopped: no error


def test_stop_ends_a_container_that_obeys_sigterm_at_once(
    executor: KubernetesExecutor, run: Runner
) -> None:
    handle = run("trap 'echo bye; exit 0' TERM; echo ready; while :; do sleep 0.1; done")
    lines: list[LogLine] = []
    reader = threading.Thread(target=lambda: lines.extend(executor.logs(handle)))
    reader.start()
    assert eventually(lambda: texts(lines) == ["ready"])

    started = time.monotonic()
    executor.stop(handle, grace_seconds=20)

    assert time.monotonic() - started < 15
    assert executor.wait(handle, timeout=30) == 0
    reader.join(timeout=30)
    assert texts(lines) == ["ready", "bye"]


def test_remove_deletes_the_job_and_its_pods_and_is_quiet_the_second_time(
    quick: KubernetesExecutor,
    make_spec: Callable[..., ContainerSpec],
    api: tuple[Any, Any],
) -> None:
    executor = quick
    handle = executor.create(make_spec("sleep 60"))
    executor.start(handle)
    assert eventually(lambda: bool(pods_of(api, executor, handle.name)))

    executor.remove(handle)

    assert eventually(lambda: not job_exists(api, executor, handle.name))
    assert eventually(lambda: not pods_of(api, executor, handle.name))
    assert executor.find(handle.name) is None
    executor.remove(handle)
    executor.stop(handle)
    with pytest.raises(ContainerNotFound):
        executor.start(handle)
    with pytest.raises(ContainerNotFound):
        executor.wait(handle)
    with pytest.raises(ContainerNotFound):
        list(executor.logs(handle))


def test_a_taken_name_is_refused(
    executor: KubernetesExecutor, make_spec: Callable[..., ContainerSpec]
) -> None:
    spec = make_spec("true")
    handle = executor.create(spec)
    try:
        with pytest.raises(ExecutorError, match="already taken"):
            executor.create(spec)
    finally:
        executor.remove(handle)


def test_an_image_that_cannot_be_pulled_ends_with_125_and_says_why(
    executor: KubernetesExecutor, run: Runner
) -> None:
    handle = run("true", image="craton-test/no-such-image:1")

    lines = list(executor.logs(handle))

    assert [line.stream for line in lines] == ["system"]
    assert "cannot start" in lines[0].text
    assert "ImagePull" in lines[0].text or "ErrImage" in lines[0].text
    assert executor.wait(handle, timeout=60) == NO_EXIT_CODE


def test_the_step_timeout_is_the_jobs_deadline(
    quick: KubernetesExecutor, make_spec: Callable[..., ContainerSpec], api: tuple[Any, Any]
) -> None:
    executor = quick
    handle = executor.create(make_spec("echo started; sleep 60", timeout_seconds=2))
    executor.start(handle)

    started = time.monotonic()
    lines = list(executor.logs(handle))

    assert texts(lines) == ["started"]
    assert executor.wait(handle, timeout=60) == DEADLINE_EXIT_CODE
    assert time.monotonic() - started < 45
    job = api[0].read_namespaced_job(handle.name, executor.namespace)
    failed = [c for c in job.status.conditions if c.type == "Failed" and c.status == "True"]
    assert [c.reason for c in failed] == ["DeadlineExceeded"]
    executor.remove(handle)


def test_the_payload_and_env_reach_the_container_verbatim(
    executor: KubernetesExecutor, run: Runner
) -> None:
    payload = '{"host": {"name": "compute-1"}, "quote": "it\'s $HOME `x` \\n"}'
    handle = run(
        'printf "%s\\n" "$1"; printf "%s\\n" "$CRATON_TOKEN"',
        payload=payload,
        env={"CRATON_TOKEN": "t0ken"},
    )

    assert texts(list(executor.logs(handle))) == [payload, "t0ken"]


def test_the_user_is_nobody(executor: KubernetesExecutor, run: Runner) -> None:
    handle = run("id -u")

    assert texts(list(executor.logs(handle))) == ["65534"]


def test_the_job_is_hardened_and_labelled(
    cluster: FakeKubernetes | None,
    make_spec: Callable[..., ContainerSpec],
    api: tuple[Any, Any],
) -> None:
    options = JobOptions(
        image_pull_secrets=("regcred",),
        ttl_seconds_after_finished=600,
        termination_grace_seconds=7,
    )
    executor = make_executor(cluster, options=options)
    limits = Limits(memory_bytes=64 * 1024 * 1024, nano_cpus=500_000_000, pids=64)
    spec = make_spec("true", env={"CRATON_URL": "http://api"}, limits=limits, timeout_seconds=300)
    handle = executor.create(spec)
    try:
        job = api[0].read_namespaced_job(handle.name, executor.namespace)
    finally:
        executor.remove(handle)
        executor.close()

    assert (job.spec.backoff_limit, job.spec.suspend) == (0, True)
    assert job.spec.active_deadline_seconds == 300
    assert job.spec.ttl_seconds_after_finished == 600
    assert job.metadata.labels["craton.run-uid"] == spec.labels["craton.run-uid"]
    assert job.metadata.labels["craton.managed"] == "true"
    assert job.metadata.labels["craton.network"] == "none"
    template = job.spec.template
    assert template.metadata.labels["craton.run-uid"] == spec.labels["craton.run-uid"]
    pod = template.spec
    assert pod.restart_policy == "Never"
    assert pod.automount_service_account_token is False
    assert pod.enable_service_links is False
    assert pod.termination_grace_period_seconds == 7
    assert [secret.name for secret in pod.image_pull_secrets] == ["regcred"]
    assert pod.security_context.run_as_non_root is True
    assert pod.security_context.run_as_user == 65534
    assert pod.security_context.seccomp_profile.type == "RuntimeDefault"
    assert not pod.host_network and not pod.host_pid and not pod.host_ipc
    assert [volume.empty_dir is not None for volume in pod.volumes] == [True]
    (container,) = pod.containers
    assert container.args == spec.command
    context = container.security_context
    assert context.allow_privilege_escalation is False
    assert context.privileged is False
    assert context.capabilities.drop == ["ALL"]
    assert not context.capabilities.add
    assert context.read_only_root_filesystem is True
    assert context.run_as_non_root is True
    assert [(mount.name, mount.mount_path) for mount in container.volume_mounts] == [
        ("tmp", "/tmp")
    ]
    assert container.resources.limits == {"memory": str(64 * 1024 * 1024), "cpu": "500m"}
    assert container.resources.requests == {"memory": str(64 * 1024 * 1024), "cpu": "100m"}
    assert [(e.name, e.value, e.value_from.secret_key_ref.name) for e in container.env] == [
        ("CRATON_URL", None, handle.name)
    ]


def test_network_is_a_label_a_network_policy_selects(
    executor: KubernetesExecutor, make_spec: Callable[..., ContainerSpec], api: tuple[Any, Any]
) -> None:
    handle = executor.create(make_spec("true", network=True))
    try:
        job = api[0].read_namespaced_job(handle.name, executor.namespace)
    finally:
        executor.remove(handle)

    assert job.spec.template.metadata.labels["craton.network"] == "default"


def test_names_and_label_values_are_made_valid_and_found_again(
    executor: KubernetesExecutor, make_spec: Callable[..., ContainerSpec]
) -> None:
    long_name = "Craton_Run-" + "x" * 80
    spec = make_spec("true", name=long_name, labels={"craton.host": "db 1 (primary)" * 10})
    handle = executor.create(spec)
    try:
        assert handle.name == job_name(long_name)
        assert len(handle.name) <= 63
        found = executor.find(long_name)
        assert found is not None and found.id == handle.id
        assert found.labels["craton.host"] == "db 1 (primary)" * 10
    finally:
        executor.remove(handle)


def test_stop_of_a_job_that_ended_by_itself_keeps_its_exit_code(
    executor: KubernetesExecutor, run: Runner
) -> None:
    handle = run("exit 5")
    assert executor.wait(handle, timeout=60) == 5

    executor.stop(handle, grace_seconds=1)

    assert executor.wait(handle, timeout=10) == 5


def test_the_fake_saw_suspended_jobs_with_backoff_limit_zero(
    fake: FakeKubernetes, executor: KubernetesExecutor, run: Runner
) -> None:
    handle = run("true")
    executor.wait(handle, timeout=30)

    (manifest,) = fake.created
    assert manifest["spec"]["suspend"] is True
    assert manifest["spec"]["backoffLimit"] == 0
    assert ("PATCH", f"/apis/batch/v1/namespaces/craton-test/jobs/{handle.name}") in fake.requests


def test_a_log_stream_that_drops_is_read_again_without_repeating(
    fake: FakeKubernetes, executor: KubernetesExecutor, run: Runner
) -> None:
    handle = run("; ".join(f"echo line-{i}; sleep 0.05" for i in range(1, 31)))
    original = fake._log_chunks
    opened: list[int] = []

    def dropping(*args: Any, **kwargs: Any) -> Any:
        opened.append(1)
        chunks = original(*args, **kwargs)
        if len(opened) == 1:  # the first stream ends after a few chunks
            return (chunk for _, chunk in zip(range(3), chunks, strict=False))
        return chunks

    fake._log_chunks = dropping  # type: ignore[method-assign]

    lines = list(executor.logs(handle))

    assert len(opened) >= 2
    assert texts(lines) == [f"line-{i}" for i in range(1, 31)]
