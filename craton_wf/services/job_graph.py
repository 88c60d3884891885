"""A new job's hosts, their payload snapshots and its graph of runs, stored set-based.

A job over a fleet has ten or a hundred thousand hosts, and a run per host and
step. Made of ORM objects, that is a ``Host`` loaded, a ``JobHost`` and a
``Run`` created per host (and their labels, parents and scopes loaded one
object at a time): most of the time a job over 10,000 hosts took to create.
Here no object is made per host:

- the target hosts are read as columns (:data:`HOST_COLUMNS`), their labels
  with one query per thousand hosts;
- variables resolve host → parent host(s) → cell → region → cloud → project
  (:func:`craton_wf.domain.variables.resolve_variables`, as
  :class:`craton_wf.services.inventory.VariableResolver` does for one host),
  from scopes each loaded once: the parents the hosts name, then theirs, and
  the cells, regions and clouds the hosts are in;
- the job hosts go in with one multi-row insert (executemany) of plain dicts;
- the runs with one ``INSERT … SELECT`` that crosses the job's hosts with its
  steps, in the order :func:`craton_wf.domain.graph.plan_runs` gives (host by
  host, then the once-steps), so run ids read in the same order as before;
- the dependencies with one ``INSERT … SELECT`` per edge of the steps' graph
  (a 9-step sequence: 8 statements, whatever the number of hosts).

The database does the per-row work it does anyway, and the client sends each
step once instead of once per host. :func:`refresh_statistics` covers what a
large insert leaves behind on PostgreSQL: see its docstring.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Boolean,
    ColumnElement,
    Integer,
    Row,
    String,
    Table,
    and_,
    func,
    insert,
    literal,
    select,
    text,
    union_all,
)
from sqlalchemy.orm import Session, aliased

from craton_wf.db.bulk import insert_rows, one_of
from craton_wf.db.models import (
    Cell,
    Cloud,
    Host,
    HostLabel,
    Job,
    JobHost,
    JSONType,
    Project,
    Region,
    Run,
    RunDependency,
    utcnow,
)
from craton_wf.domain.graph import step_dependencies
from craton_wf.domain.payload import host_snapshot
from craton_wf.domain.states import HostStatus, RunStatus
from craton_wf.domain.variables import resolve_variables

HOST_COLUMNS = (
    Host.id,
    Host.name,
    Host.ip_address,
    Host.device_type,
    Host.active,
    Host.parent_id,
    Host.cell_id,
    Host.region_id,
    Host.cloud_id,
    Host.variables,
)
_JOB_HOSTS = cast(Table, JobHost.__table__)
_RUNS = cast(Table, Run.__table__)
_RUN_DEPENDENCIES = cast(Table, RunDependency.__table__)
CHUNK = 1000  # ids per query, well inside every database's parameter limit
# A job whose graph adds at least this many rows to a table, and at least a
# tenth of what the table held, refreshes the table's statistics.
LARGE_INSERT = 10_000


def load_hosts(session: Session, project_id: str, ids: Sequence[int]) -> list[Row[Any]]:
    """The project's hosts of ``ids`` (as :data:`HOST_COLUMNS`), in the order of
    ``ids``; an id of no such host is left out."""
    found: dict[int, Row[Any]] = {}
    for chunk in _chunks(sorted(set(ids))):
        for row in session.connection().execute(
            select(*HOST_COLUMNS).where(
                Host.project_id == project_id, one_of(session, Host.id, chunk)
            )
        ):
            found[row.id] = row
    return [found[i] for i in ids if i in found]


class FleetVariables:
    """Resolved variables and payload snapshots of many hosts, every scope loaded once."""

    def __init__(self, session: Session, project_id: str, hosts: Sequence[Row[Any]]) -> None:
        self.session = session
        self.connection = session.connection()  # rows as they come: no ORM loading
        self.labels = self._labels([host.id for host in hosts])
        self.parents = self._parents(hosts)
        self.cells = self._scopes(Cell, {host.cell_id for host in hosts})
        self.regions = self._scopes(Region, {host.region_id for host in hosts})
        self.clouds = self._scopes(Cloud, {host.cloud_id for host in hosts})
        self.project_variables = self.connection.execute(
            select(Project.variables).where(Project.id == project_id)
        ).scalar_one()
        # what a host's cell, region, cloud and project resolve to, per place
        self._places: dict[tuple[int | None, int, int], dict[str, Any]] = {}

    def _labels(self, ids: list[int]) -> dict[int, list[str]]:
        labels: dict[int, list[str]] = {}
        for chunk in _chunks(ids):
            for host_id, label in self.connection.execute(
                select(HostLabel.host_id, HostLabel.label)
                .where(one_of(self.session, HostLabel.host_id, chunk))
                .order_by(HostLabel.host_id, HostLabel.label)
            ):
                labels.setdefault(host_id, []).append(label)
        return labels

    def _parents(self, hosts: Sequence[Row[Any]]) -> dict[int, tuple[int | None, dict[str, Any]]]:
        """Every ancestor of ``hosts``: (its parent, its variables), by id."""
        known: dict[int, tuple[int | None, dict[str, Any]]] = {
            host.id: (host.parent_id, host.variables) for host in hosts
        }
        wanted = {host.parent_id for host in hosts if host.parent_id is not None} - set(known)
        while wanted:
            for chunk in _chunks(sorted(wanted)):
                for host_id, parent_id, variables in self.connection.execute(
                    select(Host.id, Host.parent_id, Host.variables).where(
                        one_of(self.session, Host.id, chunk)
                    )
                ):
                    known[host_id] = (parent_id, variables)
            # a parent that no longer exists ends its chain, as it does for one host
            found = [known[i][0] for i in wanted if i in known]
            wanted = {parent for parent in found if parent is not None} - set(known)
        return known

    def _scopes(self, model: Any, ids: set[int | None]) -> dict[int, tuple[str, dict[str, Any]]]:
        wanted = sorted(i for i in ids if i is not None)
        if not wanted:
            return {}
        return {
            row.id: (row.name, row.variables)
            for chunk in _chunks(wanted)
            for row in self.connection.execute(
                select(model.id, model.name, model.variables).where(
                    one_of(self.session, model.id, chunk)
                )
            )
        }

    def variables(self, host: Row[Any]) -> dict[str, Any]:
        """The host's resolved variables: the most specific scope that defines a key wins.

        Merged from the least specific up (the place, the farthest parent, …,
        the host), each scope overwriting: the values of
        :func:`~craton_wf.domain.variables.resolve_variables`, at a dict
        update per scope rather than a call per key. Only the keys' order
        differs, and a payload is sent with its keys sorted."""
        scopes = [host.variables]
        seen = {host.id}
        parent = host.parent_id
        while parent is not None and parent not in seen and parent in self.parents:
            seen.add(parent)
            parent, parent_variables = self.parents[parent]
            scopes.append(parent_variables)
        merged = dict(self._place(host.cell_id, host.region_id, host.cloud_id))
        for scope in reversed(scopes):
            merged.update(scope or {})
        return merged

    def _place(self, cell_id: int | None, region_id: int, cloud_id: int) -> dict[str, Any]:
        """The variables a place gives its hosts, resolved once: first found
        wins, so resolving them first and the host's on top is the same merge."""
        key = (cell_id, region_id, cloud_id)
        if key not in self._places:
            scopes = [
                table[scope_id][1]
                for table, scope_id in (
                    (self.cells, cell_id),
                    (self.regions, region_id),
                    (self.clouds, cloud_id),
                )
                if scope_id in table
            ]
            self._places[key] = resolve_variables([*scopes, self.project_variables])
        return self._places[key]

    def snapshot(self, host: Row[Any]) -> dict[str, Any]:
        """The host's payload snapshot, as a job freezes it."""

        def name(table: dict[int, tuple[str, dict[str, Any]]], key: int | None) -> str | None:
            return table[key][0] if key in table else None  # type: ignore[index]

        return host_snapshot(
            {
                "id": host.id,
                "name": host.name,
                "ip_address": host.ip_address,
                "device_type": host.device_type,
                "active": host.active,
                "labels": self.labels.get(host.id, []),
                "parent_id": host.parent_id,
            },
            self.variables(host),
            {
                "region": name(self.regions, host.region_id),
                "cell": name(self.cells, host.cell_id),
                "cloud": name(self.clouds, host.cloud_id),
            },
        )


def store_graph(
    session: Session, job: Job, steps: list[dict[str, Any]], hosts: Sequence[Row[Any]]
) -> None:
    """The job's hosts (payloads snapshotted) and its runs and their edges, all
    PENDING; the tables' statistics refreshed when they grew much
    (:func:`refresh_statistics`)."""
    fleet = FleetVariables(session, job.project_id, hosts)
    connection = session.connection()
    insert_rows(
        connection,
        _JOB_HOSTS,
        [
            {
                "job_id": job.id,
                "host_id": host.id,
                "host_name": host.name,
                "position": position,
                "status": HostStatus.PENDING.value,
                "host": fleet.snapshot(host),
            }
            for position, host in enumerate(hosts)
        ],
    )
    once = {step["name"] for step in steps if step.get("once")}
    now = utcnow()
    host_steps = [(index, step) for index, step in enumerate(steps) if step["name"] not in once]
    if host_steps:
        _insert_host_runs(session, job, host_steps, now)
    once_runs = {  # step index: the id of its one run
        index: connection.execute(
            insert(_RUNS)
            .values(
                **_run_values(job, index, step, now),
                uid=uuid.uuid4().hex[:12],
                job_host_id=None,
            )
            .returning(_RUNS.c.id)
        ).scalar_one()
        for index, step in enumerate(steps)
        if step["name"] in once
    }
    position = {step["name"]: index for index, step in enumerate(steps)}
    for name, dependencies in step_dependencies(steps).items():
        for dependency in dependencies:
            _insert_edges(session, job, position[name], position[dependency], once_runs)
    host_runs = len(hosts) * len(host_steps)
    refresh_statistics(session, {_JOB_HOSTS: len(hosts), _RUNS: host_runs + len(once_runs)})


def _run_values(job: Job, index: int, step: dict[str, Any], now: Any) -> dict[str, Any]:
    """A new run's columns, but for its host and uid: its step's, and the job's."""
    return {
        "job_id": job.id,
        "project_id": job.project_id,
        "step_index": index,
        "step_name": step["name"],
        "task_id": step["task_id"],
        "build_id": step["build_id"],
        "image": step["image"],
        "command": step["command"],
        "args": step.get("args") or {},
        "required": step.get("required", True),
        "status": RunStatus.PENDING.value,
        "max_attempts": 1 + int(step.get("retries") or 0),
        "timeout_seconds": step.get("timeout"),
        "created_at": now,
    }


_STEP_TYPES: dict[str, Any] = {
    "step_index": Integer,
    "step_name": String,
    "task_id": Integer,
    "build_id": Integer,
    "image": String,
    "command": JSONType,
    "args": JSONType,
    "required": Boolean,
    "max_attempts": Integer,
    "timeout_seconds": Integer,
}


def _insert_host_runs(
    session: Session, job: Job, host_steps: list[tuple[int, dict[str, Any]]], now: Any
) -> None:
    """One run per (job host, host step): the job's hosts crossed with its steps,
    host by host, steps in order."""
    step_rows = union_all(
        *[
            select(
                *[
                    literal(value, _STEP_TYPES[key]).label(key)
                    for key, value in _run_values(job, index, step, now).items()
                    if key in _STEP_TYPES
                ]
            )
            for index, step in host_steps
        ]
    ).subquery("steps")
    shared = {"job_id": job.id, "project_id": job.project_id, "created_at": now}
    columns = [
        ("uid", _random_uid(session)),
        ("job_host_id", JobHost.id),
        *((key, step_rows.c[key]) for key in _STEP_TYPES),
        *((key, literal(value, _RUNS.c[key].type)) for key, value in shared.items()),
        ("status", literal(RunStatus.PENDING.value, String)),
    ]
    session.execute(
        insert(Run).from_select(
            [key for key, _ in columns],
            select(*[value for _, value in columns])
            .select_from(JobHost)
            .join(step_rows, literal(True))
            .where(JobHost.job_id == job.id)
            .order_by(JobHost.position, step_rows.c.step_index),
        )
    )


def _random_uid(session: Session) -> ColumnElement[str]:
    """Twelve random hex digits per row, as ``uuid4().hex[:12]`` gives in Python."""
    if session.get_bind().dialect.name == "postgresql":
        return func.substr(func.replace(func.gen_random_uuid().cast(String), "-", ""), 1, 12)
    return func.lower(func.hex(func.randomblob(6)))


def _insert_edges(
    session: Session, job: Job, step: int, dependency: int, once_runs: dict[int, int]
) -> None:
    """Every run of step ``step`` waits for the runs of step ``dependency``: on its
    own host when both run per host; else every run of one on every run of the
    other (a once-step has one run, of id ``once_runs[index]``).

    Per host, the two runs are found from the job's hosts through the runs'
    host index. The planner has no figures for a job just inserted, and joined
    any other way (on the job's runs, by job id) each host's run may be looked
    for among all of the job's runs: 10,000 hosts then cost 10,000 times
    10,000 rows, where this costs 10,000 index lookups whatever it thinks."""
    if step not in once_runs and dependency not in once_runs:
        waiting, needed = aliased(Run), aliased(Run)
        edges = (
            select(waiting.id, needed.id)
            .select_from(JobHost)
            .join(waiting, and_(waiting.job_host_id == JobHost.id, waiting.step_index == step))
            .join(needed, and_(needed.job_host_id == JobHost.id, needed.step_index == dependency))
            .where(JobHost.job_id == job.id)
        )
    elif step in once_runs and dependency in once_runs:
        edges = select(literal(once_runs[step]), literal(once_runs[dependency]))
    elif step in once_runs:
        edges = select(literal(once_runs[step]), Run.id).where(
            Run.job_id == job.id, Run.step_index == dependency
        )
    else:
        edges = select(Run.id, literal(once_runs[dependency])).where(
            Run.job_id == job.id, Run.step_index == step
        )
    session.connection().execute(
        insert(_RUN_DEPENDENCIES).from_select(["run_id", "depends_on_id"], edges)
    )


def refresh_statistics(session: Session, counts: dict[Table, int]) -> None:
    """``ANALYZE`` the tables a large insert grew by a tenth or more (PostgreSQL).

    ``counts``: rows just inserted, by table. A table that grew from few rows
    to many keeps the planner's old picture of it until autovacuum's next
    look (up to a minute, and only once a tenth of it changed): a table of a
    few rows, where reading every row is cheapest. The runner's claims, a
    job's pages and its hosts' lookups would then each read every row of a
    table that has just grown by a hundred thousand. Run in the inserting
    transaction, ``ANALYZE`` counts its rows, and the new statistics commit
    with them: the first query that sees the job plans with them, and a
    rolled-back job leaves none. It is done only when the insert is large
    against the table (what autovacuum would do, at once rather than a minute
    later); it samples at most 30,000 rows a table, and reads every column but
    the JSON documents (payloads, commands, outputs): no query filters on
    them, and their values cost most of an ``ANALYZE`` (a few times the rest).
    Autovacuum's own passes still cover every column.
    """
    if session.get_bind().dialect.name != "postgresql":
        return  # SQLite plans without statistics unless ANALYZE was ever run
    large = {table.name: table for table, count in counts.items() if count >= LARGE_INSERT}
    if not large:
        return
    estimates: dict[str, float] = dict(
        session.execute(
            text(
                "SELECT relname, reltuples FROM pg_class"
                " WHERE oid = ANY(CAST(:names AS regclass[]))"
            ),
            {"names": list(large)},
        ).all()
    )
    stale = [
        table
        for name, table in sorted(large.items())
        if estimates.get(name, -1) < 0 or counts[table] >= 0.1 * estimates[name]
    ]
    if stale:
        session.execute(text(f"ANALYZE {', '.join(_analyzed_columns(table) for table in stale)}"))


def _analyzed_columns(table: Table) -> str:
    columns = [column.name for column in table.columns if not isinstance(column.type, JSON)]
    return f"{table.name} ({', '.join(columns)})"


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]
