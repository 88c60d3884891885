"""Which containers that runners left behind may be removed: the sweep's verdicts.

A runner removes a run's container only after the run's logs and exit code
are committed; a runner stopped or killed in between leaves the container
behind, and nothing else would remove it. So runners sweep now and then
(:mod:`craton_wf.runner.sweeper`): they list the containers carrying the run
labels and ask :func:`removable_containers` which of them may go.

The verdict is read from this database alone and, when in doubt, keeps:

- A container whose ``craton.run-uid`` is not the uid of the run its
  ``craton.run`` names belongs to another database sharing the container
  runtime (run ids repeat across databases, uids do not) and is never
  touched. So is the container of a run that no longer exists (its job was
  deleted): from here it cannot be told apart from another database's.
- The container of a run in a final state may go once no runner holds the
  run's lease.
- The container of an earlier attempt may go once the run has moved on to a
  later attempt, unless the run still records it as its container: between
  the claim of attempt N+1 and the start of its container, the run still
  names attempt N's.
- Everything else stays; above all the container of a run queued, starting
  or running at that same attempt, which a runner may be reading or may
  adopt.

Run state only moves forward (a final run never changes again; a run's
attempt grows, and is given back only before its container was made), so a
verdict read after the containers were listed still holds when one is removed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from craton_wf.db.bulk import one_of
from craton_wf.db.models import Run
from craton_wf.domain.labels import ATTEMPT_LABEL, RUN_LABEL, RUN_UID_LABEL
from craton_wf.domain.states import FINAL_RUN_STATES

_FINAL = frozenset(status.value for status in FINAL_RUN_STATES)


@dataclass(frozen=True)
class LeftContainer:
    """A container found by its run labels: which run and attempt it says it is."""

    container_id: str
    run_id: int
    run_uid: str
    attempt: int


def left_container(container_id: str, labels: Mapping[str, str]) -> LeftContainer | None:
    """What ``labels`` say of the container's run; None when they are missing or malformed."""
    try:
        return LeftContainer(
            container_id=container_id,
            run_id=int(labels[RUN_LABEL]),
            run_uid=labels[RUN_UID_LABEL],
            attempt=int(labels[ATTEMPT_LABEL]),
        )
    except (KeyError, ValueError):
        return None


def removable_containers(
    session: Session, containers: Iterable[LeftContainer]
) -> list[LeftContainer]:
    """Of ``containers``, those no run of this database needs any more."""
    containers = list(containers)
    if not containers:
        return []
    run_ids = sorted({container.run_id for container in containers})
    rows = session.execute(
        select(Run.id, Run.uid, Run.status, Run.attempt, Run.lease_owner, Run.container_id).where(
            one_of(session, Run.id, run_ids)
        )
    ).all()
    runs = {row.id: row for row in rows}
    return [c for c in containers if _is_removable(c, runs.get(c.run_id))]


def _is_removable(container: LeftContainer, run: Any) -> bool:
    if run is None or run.uid != container.run_uid:
        return False  # another database's, or a deleted run's: not ours to judge
    if run.status in _FINAL and run.lease_owner is None:
        return True
    return container.attempt < run.attempt and run.container_id != container.container_id
