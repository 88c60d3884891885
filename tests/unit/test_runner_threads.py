"""The log readers' threads: reused when idle, never queued behind a blocked one;
and the outcomes threads hand back."""

from __future__ import annotations

import threading

import pytest

from craton_wf.runner.threads import Outcome, ReusedThreads


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


def test_an_outcome_is_waited_for_by_every_waiter_and_set_once() -> None:
    outcome: Outcome[int] = Outcome()
    assert not outcome.done() and not outcome.wait(timeout=0.01)
    with pytest.raises(TimeoutError):
        outcome.result(timeout=0.01)
    got: list[int] = []
    waiters = [threading.Thread(target=lambda: got.append(outcome.result())) for _ in range(3)]
    for waiter in waiters:
        waiter.start()
    outcome.set_result(7)
    for waiter in waiters:
        waiter.join(timeout=5)
    assert got == [7, 7, 7] and outcome.done() and outcome.exception() is None
    assert outcome.result(timeout=0) == 7  # as often as asked
    with pytest.raises(RuntimeError):
        outcome.set_result(8)
    assert outcome.result() == 7


def test_an_outcome_that_failed_raises_what_was_raised() -> None:
    outcome: Outcome[int] = Outcome()
    error = ValueError("no")
    outcome.set_exception(error)
    assert outcome.exception() is error
    with pytest.raises(ValueError, match="no"):
        outcome.result()
