"""The log readers' threads: reused when idle, never queued behind a blocked one;
and the outcomes and queues threads hand over."""

from __future__ import annotations

import queue
import threading

import pytest

from craton_wf.runner.threads import Outcome, ReusedThreads, WeighedQueue


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


def test_a_weighed_queue_holds_the_putter_back_by_weight_until_taken_or_closed() -> None:
    lines: WeighedQueue[str] = WeighedQueue(capacity=1000)
    assert lines.put("block of 600", 600)
    assert lines.put("block of 600 more", 600)  # under the capacity when put
    third = Outcome[bool]()
    putter = threading.Thread(target=lambda: third.set_result(lines.put("third", 10)))
    putter.start()
    assert not third.wait(0.1)  # 1200 lines waiting: held back
    assert lines.get(timeout=1) == "block of 600"
    assert third.result(timeout=5) is True  # 600 waiting: let go
    assert [lines.get(timeout=1), lines.get(timeout=1)] == ["block of 600 more", "third"]
    with pytest.raises(queue.Empty):
        lines.get(timeout=0.01)

    lines.put("big", 5000)
    stuck = Outcome[bool]()
    putter = threading.Thread(target=lambda: stuck.set_result(lines.put("more", 1)))
    putter.start()
    assert not stuck.wait(0.05)
    lines.close()  # the taker is gone: the putter is let go, empty-handed
    assert stuck.result(timeout=5) is False
    assert lines.put("after", 0) is False
