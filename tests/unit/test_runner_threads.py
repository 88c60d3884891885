"""The log readers' threads: reused when idle, never queued behind a blocked one."""

from __future__ import annotations

import threading

import pytest

from craton_wf.runner.threads import ReusedThreads


def test_an_idle_thread_is_reused_and_a_blocked_one_holds_back_nothing() -> None:
    pool = ReusedThreads("test-readers")
    first = pool.submit(lambda: threading.current_thread().name)
    name = first.result(timeout=5)
    # Let the thread count itself idle again before the next task comes.
    for _ in range(100):
        if pool._idle == 1:
            break
        threading.Event().wait(0.01)
    assert pool.submit(lambda: threading.current_thread().name).result(timeout=5) == name

    release = threading.Event()
    blocked = pool.submit(lambda: release.wait(30))
    other = pool.submit(lambda: threading.current_thread().name)
    assert other.result(timeout=5) != ""  # done while the first still blocks
    assert not blocked.done()
    release.set()
    assert blocked.result(timeout=5) is True


def test_what_a_task_raises_is_the_submitters() -> None:
    pool = ReusedThreads("test-readers")

    def broken() -> None:
        raise RuntimeError("stream broke")

    with pytest.raises(RuntimeError, match="stream broke"):
        pool.submit(broken).result(timeout=5)
    assert pool.submit(lambda: 42).result(timeout=5) == 42  # the thread lives on
