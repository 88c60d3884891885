"""Test data made through the services (and, for READY builds, the runner's calls)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from craton_wf.db.models import Build, Task, TaskApproval
from craton_wf.domain.states import BuildStatus
from craton_wf.engine import builds as build_service
from craton_wf.engine.leases import take_lease
from craton_wf.services import inventory
from craton_wf.services import tasks as task_service
from craton_wf.services.inputs import TaskCreate


def make_inventory(
    session: Session, project_id: str, hosts: int = 3, host_vars: dict[str, Any] | None = None
) -> list[Any]:
    cloud = inventory.create_cloud(session, project_id, {"name": "cloud1"})
    region = inventory.create_region(
        session, project_id, {"name": "region1", "cloud_id": cloud.id, "variables": {"tz": "UTC"}}
    )
    cell = inventory.create_cell(session, project_id, {"name": "cell1", "region_id": region.id})
    made = []
    for index in range(hosts):
        made.append(
            inventory.create_host(
                session,
                project_id,
                {
                    "name": f"host-{index:03d}",
                    "ip_address": f"10.0.0.{index + 1}",
                    "region_id": region.id,
                    "cell_id": cell.id,
                    "labels": ["compute"],
                    "variables": dict(host_vars or {}),
                },
            )
        )
    return made


def make_ready_task(
    session: Session,
    project_id: str,
    name: str,
    command: str = "run",
    image: str = "craton/busybox:latest",
    approve: bool = True,
    **fields: Any,
) -> Any:
    """A task whose first build is READY, finished under a lease as a runner would."""
    task = task_service.create_task(
        session,
        project_id,
        None,
        TaskCreate.model_validate(
            {"name": name, "location": f"https://example.invalid/{name}", "command": command}
            | fields
        ),
        None,
        1024,
    )
    build = session.get(Build, task.current_build_id)
    build.status = BuildStatus.BUILDING.value
    epoch = take_lease(session, build, "test-runner", 30)
    build_service.finish_build(
        session, build.id, "test-runner", epoch, image=image, digest="sha256:" + "0" * 64
    )
    if approve:
        approve_build(session, build)
    session.flush()
    return task


def finish_current_build(session: Session, task_id: int, digest: str) -> Any:
    """Finish the task's newest build as READY with ``digest``, as a runner would."""
    task = session.get(Task, task_id)
    build = session.get(Build, task.current_build_id)
    build.status = BuildStatus.BUILDING.value
    epoch = take_lease(session, build, "test-runner", 30)
    build_service.finish_build(
        session, build.id, "test-runner", epoch, image="craton/busybox:latest", digest=digest
    )
    session.flush()
    return build


def approve_build(session: Session, build: Any) -> None:
    """Record an approval of ``build``'s digest, as an admin other than its author would."""
    session.add(
        TaskApproval(
            task_id=build.task_id,
            build_id=build.id,
            digest=build.digest,
            decision="approved",
            user_name="test-approver",
        )
    )
    session.flush()


def approve_current_build(session: Session, task_id: int) -> None:
    task = session.get(Task, task_id)
    approve_build(session, session.get(Build, task.ready_build_id))
