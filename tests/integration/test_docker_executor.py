"""The docker executor against the real engine, with the locally made busybox image."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC

import docker
import docker.errors
import pytest

from craton_wf.errors import ContainerNotFound, ExecutorError
from craton_wf.executors.base import ContainerSpec, ContainerState, Handle, Limits, LogLine
from craton_wf.executors.docker import DockerExecutor

pytestmark = [pytest.mark.docker, pytest.mark.timeout(120)]

Runner = Callable[..., Handle]


@pytest.fixture
def executor() -> Iterator[DockerExecutor]:
    executor = DockerExecutor()
    yield executor
    executor.close()


@pytest.fixture
def make_spec(
    busybox_image: str, unique_name: Callable[[str], str], test_labels: dict[str, str]
) -> Callable[..., ContainerSpec]:
    def make(
        script: str, name: str = "run", payload: str = "{}", **kwargs: object
    ) -> ContainerSpec:
        labels = {**test_labels, **kwargs.pop("labels", {})}  # type: ignore[dict-item]
        return ContainerSpec(
            name=unique_name(name),
            image=busybox_image,
            command=["sh", "-c", script, "sh", payload],  # the payload is $1
            labels=labels,
            **kwargs,  # type: ignore[arg-type]
        )

    return make


@pytest.fixture
def run(executor: DockerExecutor, make_spec: Callable[..., ContainerSpec]) -> Iterator[Runner]:
    """Create and start a container running ``script``; removed after the test."""
    handles: list[Handle] = []

    def start(script: str, **kwargs: object) -> Handle:
        handle = executor.create(make_spec(script, **kwargs))
        handles.append(handle)
        executor.start(handle)
        return handle

    yield start
    for handle in handles:
        executor.remove(handle)


def texts(lines: list[LogLine], stream: str) -> list[str]:
    return [line.text for line in lines if line.stream == stream]


def test_ping(executor: DockerExecutor) -> None:
    executor.ping()


def test_ping_of_an_unreachable_engine_says_so() -> None:
    executor = DockerExecutor("unix:///nonexistent/docker.sock")

    with pytest.raises(ExecutorError, match="Docker engine"):
        executor.ping()


def test_500_numbered_lines_arrive_in_order_and_a_last_line_without_newline(
    executor: DockerExecutor, run: Runner
) -> None:
    handle = run("for i in $(seq 1 500); do echo \"line $i\"; done; printf 'the end'")

    lines = list(executor.logs(handle))

    assert texts(lines, "stdout") == [f"line {i}" for i in range(1, 501)] + ["the end"]
    assert all(
        line.ts.tzinfo is not None and line.ts.utcoffset() == UTC.utcoffset(None) for line in lines
    )
    assert [line.ts for line in lines] == sorted(line.ts for line in lines)
    assert executor.wait(handle) == 0


def test_stdout_and_stderr_are_told_apart(executor: DockerExecutor, run: Runner) -> None:
    handle = run(
        "echo to-out; echo to-err >&2; sleep 0.2; echo again-err >&2; echo again-out; "
        "printf 'partial-err' >&2"
    )

    lines = list(executor.logs(handle))

    assert texts(lines, "stdout") == ["to-out", "again-out"]
    assert texts(lines, "stderr") == ["to-err", "again-err", "partial-err"]


def test_a_40_kib_line_comes_back_whole(executor: DockerExecutor, run: Runner) -> None:
    handle = run(
        "echo before; head -c 40960 /dev/zero | tr '\\0' x; echo; "
        "printf '\\303\\251t\\303\\251 \\377\\n'; echo after"
    )

    lines = texts(list(executor.logs(handle)), "stdout")

    assert lines[0] == "before"
    assert lines[1] == "x" * 40960
    assert lines[2] == "été \ufffd"  # UTF-8 decoded, invalid bytes replaced
    assert lines[3:] == ["after"]


def test_logs_of_a_running_container_follow_until_it_exits(
    executor: DockerExecutor, run: Runner
) -> None:
    handle = run("echo first; sleep 1.5; echo second")

    started = time.monotonic()
    lines = list(executor.logs(handle))

    assert texts(lines, "stdout") == ["first", "second"]
    assert time.monotonic() - started >= 1.0
    assert executor.find(handle.name).state == ContainerState.EXITED  # type: ignore[union-attr]


@pytest.mark.parametrize("code", [0, 3])
def test_exit_codes(executor: DockerExecutor, run: Runner, code: int) -> None:
    handle = run(f"exit {code}")

    assert executor.wait(handle, timeout=30) == code


def test_wait_returns_none_on_timeout(executor: DockerExecutor, run: Runner) -> None:
    handle = run("sleep 30")

    started = time.monotonic()
    assert executor.wait(handle, timeout=0.5) is None
    assert time.monotonic() - started < 5


def test_find_reports_created_running_exited(
    executor: DockerExecutor, make_spec: Callable[..., ContainerSpec]
) -> None:
    spec = make_spec("sleep 1", labels={"craton.run": "42"})
    assert executor.find(spec.name) is None
    handle = executor.create(spec)
    try:
        found = executor.find(spec.name)
        assert found is not None
        assert (found.id, found.state) == (handle.id, ContainerState.CREATED)
        assert found.labels["craton.run"] == "42"
        assert found.labels["craton.managed"] == "true"

        executor.start(handle)
        assert executor.find(spec.name).state == ContainerState.RUNNING  # type: ignore[union-attr]

        assert executor.wait(handle, timeout=30) == 0
        assert executor.find(spec.name).state == ContainerState.EXITED  # type: ignore[union-attr]
    finally:
        executor.remove(handle)
    assert executor.find(spec.name) is None


def test_find_matches_the_whole_name_only(
    executor: DockerExecutor, make_spec: Callable[..., ContainerSpec]
) -> None:
    spec = make_spec("true", name="prefix")
    handle = executor.create(spec)
    try:
        assert executor.find(spec.name[:-2]) is None
        assert executor.find(spec.name + "x") is None
        assert executor.find(handle.id[:12]) is None
    finally:
        executor.remove(handle)


def test_managed_lists_the_containers_of_runs_in_every_state(
    executor: DockerExecutor,
    make_spec: Callable[..., ContainerSpec],
    test_labels: dict[str, str],
) -> None:
    created = executor.create(make_spec("true", labels={"craton.run-uid": "sweep-created"}))
    exited = executor.create(make_spec("true", labels={"craton.run-uid": "sweep-exited"}))
    not_a_run = executor.create(make_spec("true", labels={"craton.run": "42"}))
    try:
        executor.start(exited)
        assert executor.wait(exited, timeout=30) == 0

        managed = executor.managed()

        ours = {
            h.id: h for h in managed if h.labels.get("craton.test") == test_labels["craton.test"]
        }
        assert set(ours) == {created.id, exited.id}
        assert (ours[created.id].name, ours[created.id].state) == (
            created.name,
            ContainerState.CREATED,
        )
        assert (ours[exited.id].name, ours[exited.id].state) == (exited.name, ContainerState.EXITED)
        assert ours[exited.id].labels == exited.labels
        assert all("craton.run-uid" in h.labels for h in managed)
    finally:
        for handle in (created, exited, not_a_run):
            executor.remove(handle)
    assert not {h.id for h in executor.managed()} & {created.id, exited.id}


def test_since_resumes_after_the_lines_already_read(executor: DockerExecutor, run: Runner) -> None:
    handle = run('for i in $(seq 1 20); do echo "line $i"; sleep 0.02; done')
    live = list(executor.logs(handle))  # read through the attach, stamped as read
    assert [line.text for line in live] == [f"line {i}" for i in range(1, 21)]
    assert all(line.live for line in live)
    everything = list(executor.logs(handle))  # replayed from the engine's log
    assert [line.text for line in everything] == [line.text for line in live]
    assert not any(line.live for line in everything)
    cut = everything[9].ts

    resumed = list(executor.logs(handle, since=cut))

    assert resumed == [line for line in everything if line.ts > cut]
    assert [line.text for line in resumed] == [f"line {i}" for i in range(11, 21)]


def test_stop_kills_a_container_that_ignores_sigterm_after_the_grace(
    executor: DockerExecutor, run: Runner
) -> None:
    handle = run("trap '' TERM; echo ignoring; exec sleep 60")  # the task ignores SIGTERM
    # Stopped once the trap is set: a SIGTERM before it would end the task at once.
    assert next(iter(executor.logs(handle))).text == "ignoring"

    started = time.monotonic()
    executor.stop(handle, grace_seconds=1)
    elapsed = time.monotonic() - started

    assert 0.8 <= elapsed < 10
    assert executor.wait(handle, timeout=10) == 137
    executor.stop(handle, grace_seconds=1)  # already stopped: no error


def test_a_task_without_a_signal_handler_stops_well_within_the_grace(
    executor: DockerExecutor, run: Runner
) -> None:
    # As PID 1, busybox sh (and sleep) would ignore SIGTERM and wait out the
    # grace; the engine's init forwards it instead.
    handle = run("sleep 300")
    time.sleep(0.5)

    started = time.monotonic()
    executor.stop(handle, grace_seconds=30)

    assert time.monotonic() - started < 5
    assert executor.wait(handle, timeout=10) == 143  # ended by SIGTERM, not killed


def test_stop_ends_a_container_that_obeys_sigterm_at_once(
    executor: DockerExecutor, run: Runner
) -> None:
    handle = run("trap 'echo bye; exit 0' TERM; echo ready; while :; do sleep 0.1; done")
    time.sleep(0.5)

    started = time.monotonic()
    executor.stop(handle, grace_seconds=20)

    assert time.monotonic() - started < 10
    assert executor.wait(handle, timeout=10) == 0
    assert texts(list(executor.logs(handle)), "stdout") == ["ready", "bye"]


def test_remove_makes_it_gone_and_is_quiet_the_second_time(
    executor: DockerExecutor,
    make_spec: Callable[..., ContainerSpec],
    docker_client: docker.DockerClient,
) -> None:
    handle = executor.create(make_spec("sleep 60"))
    executor.start(handle)

    executor.remove(handle)

    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(handle.id)
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
    executor: DockerExecutor, make_spec: Callable[..., ContainerSpec]
) -> None:
    spec = make_spec("true")
    handle = executor.create(spec)
    try:
        with pytest.raises(ExecutorError, match="already taken"):
            executor.create(spec)
    finally:
        executor.remove(handle)


def test_a_missing_image_is_an_executor_error(
    executor: DockerExecutor, make_spec: Callable[..., ContainerSpec]
) -> None:
    spec = make_spec("true")
    spec = ContainerSpec(name=spec.name, image="craton-test/no-such-image:1", command=["true"])

    with pytest.raises(ExecutorError, match="image"):
        executor.create(spec)


def test_container_is_hardened(
    executor: DockerExecutor,
    make_spec: Callable[..., ContainerSpec],
    docker_client: docker.DockerClient,
) -> None:
    limits = Limits(memory_bytes=64 * 1024 * 1024, nano_cpus=500_000_000, pids=64)
    handle = executor.create(make_spec("true", env={"CRATON_URL": "http://api"}, limits=limits))
    try:
        attrs = docker_client.api.inspect_container(handle.id)
    finally:
        executor.remove(handle)

    host = attrs["HostConfig"]
    assert host["CapDrop"] == ["ALL"]
    assert not host["CapAdd"]
    assert host["ReadonlyRootfs"] is True
    assert host["NetworkMode"] == "none"
    assert "no-new-privileges:true" in host["SecurityOpt"]
    assert host["PidsLimit"] == 64
    assert host["Memory"] == 64 * 1024 * 1024
    assert host["NanoCpus"] == 500_000_000
    assert host["Privileged"] is False
    assert host["AutoRemove"] is False
    assert host["Tmpfs"] == {"/tmp": "rw,size=64m,mode=1777"}
    assert not host["Binds"] and not attrs["Mounts"]
    config = attrs["Config"]
    assert config["User"] == "65534:65534"
    assert config["Tty"] is False and config["OpenStdin"] is False
    assert "CRATON_URL=http://api" in config["Env"]
    assert config["Labels"]["craton.managed"] == "true"


def test_inside_the_container_only_tmp_is_writable_and_the_user_is_nobody(
    executor: DockerExecutor, run: Runner
) -> None:
    handle = run(
        "id -u; touch /rootfs-file 2>/dev/null && echo rootfs-writable; "
        "touch /tmp/file && echo tmp-writable; "
        "wget -q -T 2 -O /dev/null http://1.1.1.1 2>/dev/null && echo network; true"
    )

    lines = texts(list(executor.logs(handle)), "stdout")

    assert lines == ["65534", "tmp-writable"]
    assert executor.wait(handle) == 0


def test_network_is_opt_in_and_on_the_projects_own_network(
    executor: DockerExecutor,
    make_spec: Callable[..., ContainerSpec],
    docker_client: docker.DockerClient,
    test_session_id: str,
) -> None:
    project = f"test-{test_session_id}-opt-in"
    spec = make_spec("true", network=True, labels={"craton.project": project})
    handle = executor.create(spec)
    try:
        attrs = docker_client.api.inspect_container(handle.id)
    finally:
        executor.remove(handle)
        network = docker_client.networks.get(f"craton-net-{project}")
        network.remove()

    assert attrs["HostConfig"]["NetworkMode"] == network.id  # never the default bridge
    gateway = network.attrs["IPAM"]["Config"][0]["Gateway"]
    assert attrs["HostConfig"]["ExtraHosts"] == [f"host.docker.internal:{gateway}"]


def test_the_payload_and_env_reach_the_container_verbatim(
    executor: DockerExecutor, run: Runner
) -> None:
    payload = '{"host": {"name": "compute-1"}, "quote": "it\'s $HOME `x` \\n"}'
    handle = run(
        'printf "%s\\n" "$1"; printf "%s\\n" "$CRATON_TOKEN" >&2',
        payload=payload,
        env={"CRATON_TOKEN": "t0ken"},
    )

    lines = list(executor.logs(handle))

    assert texts(lines, "stdout") == [payload]
    assert texts(lines, "stderr") == ["t0ken"]


def test_the_container_has_no_capabilities_and_cannot_gain_any(
    executor: DockerExecutor, run: Runner
) -> None:
    handle = run("grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs)' /proc/self/status")

    status = dict(line.split(":\t") for line in texts(list(executor.logs(handle)), "stdout"))

    assert status["CapEff"].strip("0") == "" and status["CapPrm"].strip("0") == ""
    assert status["CapBnd"].strip("0") == ""
    assert status["NoNewPrivs"] == "1"
    assert executor.wait(handle) == 0


def test_without_network_only_the_loopback_interface_exists(
    executor: DockerExecutor, run: Runner
) -> None:
    handle = run("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '")

    assert texts(list(executor.logs(handle)), "stdout") == ["lo"]
    assert executor.wait(handle) == 0


def test_the_pids_limit_stops_a_fork_bomb(executor: DockerExecutor, run: Runner) -> None:
    limits = Limits(memory_bytes=64 * 1024 * 1024, nano_cpus=500_000_000, pids=20)
    handle = run(
        "n=0; while [ $n -lt 60 ]; do sleep 30 & n=$((n+1)); echo $n; done",
        limits=limits,
    )

    lines = list(executor.logs(handle))

    started = [int(text) for text in texts(lines, "stdout")]
    assert 0 < max(started) < 20  # the shell is one of the 20 processes
    assert any("can't fork" in text for text in texts(lines, "stderr"))
    executor.stop(handle, grace_seconds=0)


def test_no_runtime_socket_and_no_host_mounts_inside(executor: DockerExecutor, run: Runner) -> None:
    handle = run(
        "ls /var/run/docker.sock /run/docker.sock 2>/dev/null && echo socket;"
        " grep -E ' (/etc/hosts|/tmp) ' /proc/self/mounts | cut -d' ' -f2,3;"
        " echo x > /etc/passwd 2>/dev/null && echo etc-writable; true"
    )

    lines = texts(list(executor.logs(handle)), "stdout")

    assert "socket" not in lines and "etc-writable" not in lines
    assert "/tmp tmpfs" in lines
    assert executor.wait(handle) == 0


def test_the_tmpfs_size_and_memory_limit_come_from_the_limits(
    executor: DockerExecutor,
    make_spec: Callable[..., ContainerSpec],
    docker_client: docker.DockerClient,
) -> None:
    limits = Limits(
        memory_bytes=96 * 1024 * 1024, nano_cpus=250_000_000, pids=32, tmpfs_bytes=8 * 1024 * 1024
    )
    handle = executor.create(make_spec("true", limits=limits))
    try:
        host = docker_client.api.inspect_container(handle.id)["HostConfig"]
    finally:
        executor.remove(handle)

    assert host["Tmpfs"] == {"/tmp": "rw,size=8m,mode=1777"}
    assert host["Memory"] == 96 * 1024 * 1024 and host["MemorySwap"] == 96 * 1024 * 1024
    assert host["NanoCpus"] == 250_000_000 and host["PidsLimit"] == 32


def test_the_memory_limit_stops_a_memory_hog(executor: DockerExecutor, run: Runner) -> None:
    limits = Limits(memory_bytes=64 * 1024 * 1024, nano_cpus=500_000_000, pids=32)
    # tail keeps the last "line" of /dev/zero, which never ends: it grows without bound
    # until the kernel kills it inside the container's 64 MiB.
    handle = run(
        "tail /dev/zero; echo hog exit $?; cat /sys/fs/cgroup/memory/memory.limit_in_bytes"
        " /sys/fs/cgroup/memory.max 2>/dev/null; true",
        limits=limits,
    )

    assert executor.wait(handle, timeout=60) == 0
    lines = texts(list(executor.logs(handle)), "stdout")
    assert lines[0] == "hog exit 137"  # SIGKILLed by the OOM killer
    assert lines[1] == str(64 * 1024 * 1024)
