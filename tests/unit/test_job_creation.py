"""Creating a job over many hosts: what it freezes, its graph, the statistics it leaves."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select, text

from craton_wf.db.engine import transaction
from craton_wf.db.models import Host, Run
from craton_wf.domain.graph import plan_runs
from craton_wf.domain.payload import host_snapshot
from craton_wf.services import inventory, job_graph
from craton_wf.services import jobs as job_service
from craton_wf.services import workflows as workflow_service
from craton_wf.services.inputs import WorkflowCreate
from tests.factories import make_ready_task


def make_fleet(session: Any, project_id: str) -> dict[str, int]:
    """Hosts in every kind of place: cells or none, below parents two deep, labels or none."""
    inventory.get_project(session, project_id).variables = {"site": "s", "tz": "project"}
    cloud = inventory.create_cloud(
        session, project_id, {"name": "c", "variables": {"site": "cloud", "os": "debian"}}
    )
    ids: dict[str, int] = {}
    for r in range(2):
        region = inventory.create_region(
            session,
            project_id,
            {"name": f"r{r}", "cloud_id": cloud.id, "variables": {"tz": f"r{r}", "kernel": 5}},
        )
        cell = inventory.create_cell(
            session,
            project_id,
            {"name": f"cell{r}", "region_id": region.id, "variables": {"kernel": 6, "row": r}},
        )
        chassis = inventory.create_host(
            session,
            project_id,
            {
                "name": f"chassis{r}",
                "ip_address": f"10.{r}.0.1",
                "region_id": region.id,
                "variables": {"power": "pdu", "kernel": 4},
                "labels": ["chassis"],
            },
        )
        ids[chassis.name] = chassis.id
        sled = inventory.create_host(
            session,
            project_id,
            {
                "name": f"sled{r}",
                "ip_address": f"10.{r}.0.2",
                "region_id": region.id,
                "cell_id": cell.id,
                "parent_id": chassis.id,
                "variables": {"power": "chassis"},
            },
        )
        ids[sled.name] = sled.id
        for b in range(3):
            blade = inventory.create_host(
                session,
                project_id,
                {
                    "name": f"blade{r}-{b}",
                    "ip_address": f"10.{r}.1.{b}",
                    "region_id": region.id,
                    "cell_id": cell.id if b else None,
                    "parent_id": sled.id,
                    "variables": {"slot": b, **({"tz": "local"} if b == 2 else {})},
                    "labels": ["compute", f"rack{b}"],
                    "device_type": "blade",
                },
            )
            ids[blade.name] = blade.id
    return ids


def resolved_one_by_one(session: Any, host_ids: list[int]) -> list[dict[str, Any]]:
    """The payloads as the inventory resolves each host on its own (the API's host view)."""
    resolver = inventory.VariableResolver(session)
    snapshots = []
    for host_id in host_ids:
        host = session.get(Host, host_id)
        fields = {
            "id": host.id,
            "name": host.name,
            "ip_address": host.ip_address,
            "device_type": host.device_type,
            "active": host.active,
            "labels": host.labels,
            "parent_id": host.parent_id,
        }
        snapshots.append(host_snapshot(fields, resolver.host_variables(host), resolver.names(host)))
    return snapshots


def test_each_host_is_frozen_as_the_inventory_resolves_it_named_hosts_first(api, sessions, root):
    with transaction(sessions) as session:
        ids = make_fleet(session, root.project_id)
        make_ready_task(session, root.project_id, "audit")
    named = ["blade1-2", ids["chassis0"]]
    made = api.post(
        "/v1/jobs", json={"task": "audit", "hosts": named, "filters": {"label": "compute"}}
    )
    assert made.status_code == 201, made.text
    hosts = api.get(f"/v1/jobs/{made.json()['id']}/hosts").json()["hosts"]
    order = ["blade1-2", "chassis0", "blade0-0", "blade0-1", "blade0-2", "blade1-0", "blade1-1"]
    assert [h["host_name"] for h in hosts] == order
    with transaction(sessions) as session:  # what each run's container gets as its host
        job = job_service.get_job(session, root.project_id, made.json()["id"])
        frozen = [h.host for h in job_service.list_job_hosts(session, job)]
        expected = resolved_one_by_one(session, [ids[name] for name in order])
    assert frozen == expected
    blade = frozen[2]  # no cell: host, sled, chassis, region, cloud, project
    assert blade["variables"] == {
        "slot": 0,
        "power": "chassis",
        "kernel": 4,
        "tz": "r0",
        "site": "cloud",
        "os": "debian",
    }
    assert blade["cell"] is None and blade["labels"] == ["compute", "rack0"]


def test_a_vars_filter_matches_the_resolved_variables(api, sessions, root):
    with transaction(sessions) as session:
        make_fleet(session, root.project_id)
        make_ready_task(session, root.project_id, "audit")
    made = api.post(
        "/v1/jobs", json={"task": "audit", "filters": {"label": "compute", "vars": "tz:r1"}}
    )
    assert made.status_code == 201, made.text
    hosts = api.get(f"/v1/jobs/{made.json()['id']}/hosts").json()["hosts"]
    assert [h["host_name"] for h in hosts] == ["blade1-0", "blade1-1"]  # blade1-2 says local
    in_cell = api.post("/v1/jobs", json={"task": "audit", "filters": {"vars": ["row:1"]}})
    hosts = api.get(f"/v1/jobs/{in_cell.json()['id']}/hosts").json()["hosts"]
    assert [h["host_name"] for h in hosts] == ["blade1-1", "blade1-2", "sled1"]  # cell1's
    none = api.post("/v1/jobs", json={"task": "audit", "filters": {"vars": "tz:nowhere"}})
    assert none.status_code == 400
    assert none.json()["message"] == "no host matches vars=tz:nowhere"


def test_runs_are_stored_host_by_host_with_the_edges_of_the_plan(api, sessions, root):
    steps = [
        {"task": "drain", "name": "drain"},
        {"task": "patch", "name": "patch", "depends_on": ["drain"]},
        {"task": "report", "name": "report", "once": True, "depends_on": ["patch"]},
        {"task": "verify", "name": "verify", "depends_on": ["report", "drain"]},
    ]
    with transaction(sessions) as session:
        make_fleet(session, root.project_id)
        for step in steps:
            make_ready_task(session, root.project_id, step["task"])
        workflow_service.create_workflow(
            session,
            root.project_id,
            None,
            WorkflowCreate.model_validate({"name": "wf", "steps": steps}),
        )
    made = api.post(
        "/v1/jobs", json={"workflow": "wf", "filters": {"label": "compute"}, "concurrency": 2}
    )
    assert made.status_code == 201, made.text
    job = made.json()
    assert job["summary"]["runs"] == {"QUEUED": 2, "PENDING": 17}  # 6 hosts x 3 + 1
    hosts = api.get(f"/v1/jobs/{job['id']}/hosts").json()["hosts"]
    position = {h["host_name"]: h["position"] for h in hosts}
    runs = api.get(f"/v1/jobs/{job['id']}/runs").json()["runs"]
    key_of = {run["id"]: (run["step_name"], position.get(run["host_name"])) for run in runs}
    planned = plan_runs(job["steps"], len(hosts))
    assert [key_of[run["id"]] for run in runs] == [node.key for node in planned]
    assert [run["id"] for run in runs] == sorted(run["id"] for run in runs)
    stored = {key_of[run["id"]]: {key_of[d] for d in run["depends_on"]} for run in runs}
    assert stored == {node.key: set(node.depends_on) for node in planned}
    with transaction(sessions) as session:  # a container's name carries its run's uid
        uids = list(session.execute(select(Run.uid).where(Run.job_id == job["id"])).scalars())
    assert len(set(uids)) == len(runs) and all(re.fullmatch("[0-9a-f]{12}", u) for u in uids)


def test_a_large_job_leaves_its_tables_statistics_fresh(api, sessions, root, monkeypatch):
    """On PostgreSQL the planner knows the job's rows as soon as they commit,
    not after autovacuum's next look (which 10 rows never get)."""
    engine = sessions.kw["bind"]
    if engine.dialect.name != "postgresql":
        pytest.skip("the planner's statistics are PostgreSQL's")
    monkeypatch.setattr(job_graph, "LARGE_INSERT", 10)
    with transaction(sessions) as session:
        ids = make_fleet(session, root.project_id)  # 10 hosts
        make_ready_task(session, root.project_id, "audit")

    def estimated_rows() -> dict[str, float]:
        with engine.connect() as connection:
            return dict(
                connection.execute(
                    text(
                        "SELECT relname, reltuples FROM pg_class"
                        " WHERE relname IN ('runs', 'job_hosts')"
                    )
                ).all()
            )

    assert estimated_rows() == {"runs": -1, "job_hosts": -1}  # emptied: never counted
    made = api.post("/v1/jobs", json={"task": "audit", "hosts": list(ids.values())})
    assert made.status_code == 201, made.text
    assert estimated_rows() == {"runs": 10, "job_hosts": 10}
    small = api.post("/v1/jobs", json={"task": "audit", "hosts": [ids["chassis0"]]})
    assert small.status_code == 201  # below the threshold: left to autovacuum
    assert estimated_rows() == {"runs": 10, "job_hosts": 10}
