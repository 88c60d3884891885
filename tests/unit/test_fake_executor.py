"""The in-memory executor behaves like the docker one where the runner can tell."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from craton_wf.errors import ContainerNotFound, ExecutorError
from craton_wf.executors import make_executor
from craton_wf.executors.base import ContainerSpec, ContainerState
from craton_wf.executors.fake import KILLED_EXIT_CODE, FakeExecutor, FakeOutcome
from craton_wf.settings import Settings


def spec(name: str = "run-1-attempt-1", *command: str, **kwargs: object) -> ContainerSpec:
    return ContainerSpec(
        name=name,
        image="task:1",
        command=list(command) or ["python3", "/craton/task.py", '{"host": "h1"}'],
        **kwargs,  # type: ignore[arg-type]
    )


def test_default_container_echoes_its_payload_and_succeeds() -> None:
    executor = FakeExecutor()
    handle = executor.create(spec())
    executor.start(handle)

    lines = list(executor.logs(handle))

    assert [(line.stream, line.text) for line in lines] == [("stdout", '{"host": "h1"}')]
    assert lines[0].ts.tzinfo is not None
    assert executor.wait(handle) == 0


def test_states_go_created_running_exited() -> None:
    executor = FakeExecutor(lambda s: FakeOutcome(delay=0.2))
    handle = executor.create(spec())
    assert executor.find(handle.name).state == ContainerState.CREATED  # type: ignore[union-attr]

    executor.start(handle)
    assert executor.find(handle.name).state == ContainerState.RUNNING  # type: ignore[union-attr]

    assert executor.wait(handle, timeout=5) == 0
    assert executor.find(handle.name).state == ContainerState.EXITED  # type: ignore[union-attr]
    assert executor.find("no-such-container") is None


def test_behaviour_decides_lines_streams_and_exit_code() -> None:
    def behaviour(s: ContainerSpec) -> FakeOutcome:
        return FakeOutcome(
            lines=[("stdout", f"patching {s.env['HOST']}"), ("stderr", "disk full")],
            exit_code=3,
        )

    executor = FakeExecutor(behaviour)
    handle = executor.create(spec(env={"HOST": "compute-1"}))
    executor.start(handle)

    lines = list(executor.logs(handle))

    assert [(line.stream, line.text) for line in lines] == [
        ("stdout", "patching compute-1"),
        ("stderr", "disk full"),
    ]
    assert lines[0].ts < lines[1].ts
    assert executor.wait(handle) == 3


def test_created_specs_are_recorded_and_a_name_is_created_once() -> None:
    executor = FakeExecutor()
    first = spec("run-7-attempt-1", "task", '{"a": 1}', labels={"craton.run": "7"})
    executor.create(first)

    with pytest.raises(ExecutorError, match="already taken"):
        executor.create(spec("run-7-attempt-1", "task", '{"a": 2}'))

    assert executor.created == [first]
    found = executor.find("run-7-attempt-1")
    assert found is not None
    assert found.labels == {"craton.run": "7", "craton.managed": "true"}


def test_wait_times_out_while_running_and_stop_ends_it_with_137() -> None:
    executor = FakeExecutor(lambda s: FakeOutcome(lines=[("stdout", "sleeping")], delay=60))
    handle = executor.create(spec())
    executor.start(handle)

    started = time.monotonic()
    assert executor.wait(handle, timeout=0.1) is None
    assert time.monotonic() - started < 2

    executor.stop(handle, grace_seconds=10)

    assert executor.wait(handle, timeout=1) == KILLED_EXIT_CODE
    assert [line.text for line in executor.logs(handle)] == ["sleeping"]
    assert executor.stopped == [handle.name]
    executor.stop(handle)  # already stopped: no error
    assert executor.stopped == [handle.name]


def test_logs_follow_until_the_container_exits() -> None:
    executor = FakeExecutor(lambda s: FakeOutcome(lines=[("stdout", "x")], delay=0.3))
    handle = executor.create(spec())
    executor.start(handle)

    started = time.monotonic()
    assert [line.text for line in executor.logs(handle)] == ["x"]
    assert time.monotonic() - started >= 0.25


def test_stop_from_another_thread_wakes_a_waiting_logs_reader() -> None:
    executor = FakeExecutor(lambda s: FakeOutcome(delay=60))
    handle = executor.create(spec())
    executor.start(handle)
    threading.Timer(0.1, executor.stop, args=(handle,)).start()

    started = time.monotonic()
    assert list(executor.logs(handle)) == []
    assert time.monotonic() - started < 5
    assert executor.wait(handle) == KILLED_EXIT_CODE


def test_since_skips_lines_up_to_and_including_it() -> None:
    lines = [("stdout", f"line {i}") for i in range(1, 6)]
    executor = FakeExecutor(lambda s: FakeOutcome(lines=lines))
    handle = executor.create(spec())
    executor.start(handle)
    everything = list(executor.logs(handle))

    resumed = list(executor.logs(handle, since=everything[1].ts))

    assert [line.text for line in resumed] == ["line 3", "line 4", "line 5"]


def test_removed_container_is_gone_and_removing_twice_is_fine() -> None:
    executor = FakeExecutor()
    handle = executor.create(spec())
    executor.start(handle)
    executor.wait(handle)

    executor.remove(handle)
    executor.remove(handle)
    executor.stop(handle)

    assert executor.find(handle.name) is None
    assert executor.removed == [handle.name]
    with pytest.raises(ContainerNotFound):
        executor.wait(handle)
    with pytest.raises(ContainerNotFound):
        executor.start(handle)
    # the name is free again, as in docker
    executor.create(spec())


def test_concurrent_creates_of_one_name_make_exactly_one_container() -> None:
    executor = FakeExecutor()
    barrier = threading.Barrier(16)
    outcomes: list[str] = []
    lock = threading.Lock()

    def create() -> None:
        barrier.wait()
        try:
            executor.create(spec("contended"))
            result = "created"
        except ExecutorError:
            result = "conflict"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=create) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["conflict"] * 15 + ["created"]
    assert len(executor.created) == 1


def test_many_runs_in_parallel_all_finish() -> None:
    executor = FakeExecutor(lambda s: FakeOutcome(lines=[("stdout", s.name)], delay=0.01))

    def run(i: int) -> None:
        handle = executor.create(spec(f"run-{i}"))
        executor.start(handle)
        assert [line.text for line in executor.logs(handle)] == [f"run-{i}"]
        assert executor.wait(handle) == 0
        executor.remove(handle)

    with ThreadPoolExecutor(max_workers=32) as pool:
        for future in [pool.submit(run, i) for i in range(200)]:
            future.result()  # re-raises a failed assertion of that run

    assert len(executor.created) == 200
    assert sorted(executor.removed) == sorted(f"run-{i}" for i in range(200))
    assert executor.names() == []


def test_ping_fails_when_unreachable() -> None:
    executor = FakeExecutor()
    executor.ping()
    executor.reachable = False
    with pytest.raises(ExecutorError):
        executor.ping()


def test_settings_pick_the_fake_executor() -> None:
    assert isinstance(make_executor(Settings(executor="fake")), FakeExecutor)


def test_the_kubernetes_executor_without_its_extra_names_the_extra(monkeypatch):
    import sys

    from craton_wf.errors import ExecutorError

    monkeypatch.setitem(sys.modules, "kubernetes", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "craton_wf.executors.kubernetes", raising=False)
    with pytest.raises(ExecutorError, match=r"pip install 'craton-wf\[kubernetes\]'"):
        make_executor(Settings(executor="kubernetes"))
