"""The queue between a run's log reader and its writer: spilled to disk, never reordered;
and a log that breaks off says so."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy import select

from craton_wf.db.engine import transaction
from craton_wf.db.models import Run, RunLog, utcnow
from craton_wf.errors import ExecutorError
from craton_wf.executors.base import Handle, LineBlock
from craton_wf.executors.fake import FakeExecutor
from craton_wf.runner.log_spool import SpillingQueue
from craton_wf.services import jobs as job_service
from tests.factories import make_inventory, make_ready_task

END = "end"


def test_items_past_the_capacity_go_to_disk_and_come_back_in_order() -> None:
    spool: SpillingQueue[object] = SpillingQueue(capacity=10, max_spilled_bytes=10**6)
    blocks = [list(range(i, i + 4)) for i in range(0, 400, 4)]
    for block in blocks:
        assert spool.put(block, len(block))  # never waits: nobody takes yet
    assert spool.put(END)
    assert spool.spilled_blocks > 90
    taken = [spool.get(timeout=1) for _ in range(len(blocks) + 1)]
    assert taken == [*blocks, END]
    with pytest.raises(queue.Empty):
        spool.get(timeout=0.01)
    spool.close()


def test_a_full_file_holds_the_reader_back_until_the_writer_takes() -> None:
    spool: SpillingQueue[object] = SpillingQueue(capacity=1, max_spilled_bytes=1)
    assert spool.put(["a"], 1)
    assert spool.put(["b"], 1)  # spilled: the file is full now
    third = threading.Thread(target=spool.put, args=(["c"], 1))
    third.start()
    third.join(timeout=0.2)
    assert third.is_alive()
    assert [spool.get(timeout=1) for _ in range(2)] == [["a"], ["b"]]
    third.join(timeout=2)
    assert spool.get(timeout=1) == ["c"]
    spool.close()


def test_close_lets_a_waiting_reader_go() -> None:
    spool: SpillingQueue[object] = SpillingQueue(capacity=1, max_spilled_bytes=1)
    spool.put(["a"], 1)
    spool.put(["b"], 1)
    results: list[bool] = []
    waiting = threading.Thread(target=lambda: results.append(spool.put(["c"], 1)))
    waiting.start()
    spool.close()
    waiting.join(timeout=2)
    assert results == [False]
    assert spool.put(["d"], 1) is False


@pytest.mark.parametrize("error", [ExecutorError("the engine went away"), OSError("reset")])
def test_a_log_that_breaks_off_ends_with_a_gap_line(  # type: ignore[no-untyped-def]
    sessions, root, start_runner, wait_job, error
):
    """A reader that cannot read on stores what it read, then a gap line: the run's
    log says it is incomplete instead of just ending early."""

    class BrokenLog(FakeExecutor):
        def log_blocks(self, handle: Handle, since: datetime | None = None) -> Iterator[LineBlock]:
            yield LineBlock("stdout", utcnow(), ["one", "two"])
            raise error

    with transaction(sessions) as session:
        (host,) = make_inventory(session, root.project_id, 1)
        make_ready_task(session, root.project_id, "broken", command="/bin/broken")
        job_id = job_service.create_job(
            session, root.project_id, None, {"task": "broken", "hosts": [host.id]}
        ).id
    start_runner(BrokenLog())
    assert wait_job(job_id).status == "SUCCEEDED"
    with transaction(sessions) as session:
        run = session.execute(select(Run).where(Run.job_id == job_id)).scalar_one()
        stored = session.execute(select(RunLog).order_by(RunLog.seq)).scalars().all()
    assert [r.line for r in stored][:2] == ["one", "two"]
    assert stored[-1].stream == "system" and stored[-1].line.startswith("[craton] log gap")
    assert run.log_gap
