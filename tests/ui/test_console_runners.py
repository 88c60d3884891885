"""The console's runners page: alive or not, heartbeat age, executor, leases held."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from craton_wf.db.engine import transaction
from craton_wf.db.models import Build, RunnerRecord
from tests.factories import make_ready_task
from tests.ui.conftest import Browser
from tests.ui.console_people import browser_as


def test_runners_show_life_heartbeat_executor_and_slots_in_use(
    signed_in: Browser, sessions, root, console, api
) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    with transaction(sessions) as session:
        session.add_all(
            [
                RunnerRecord(
                    id="live-1",
                    name="rack-a",
                    hostname="node-a",
                    pid=11,
                    executor="docker",
                    started_at=now - timedelta(hours=1),
                    heartbeat_at=now,
                ),
                RunnerRecord(
                    id="gone-1",
                    name="rack-b",
                    hostname="node-b",
                    pid=12,
                    executor="swarm",
                    started_at=now - timedelta(hours=2),
                    heartbeat_at=now - timedelta(minutes=5),
                ),
                RunnerRecord(
                    id="done-1",
                    name="<b>rack-c</b>",
                    hostname="node-c",
                    pid=13,
                    executor="kubernetes",
                    heartbeat_at=now - timedelta(minutes=1),
                    stopped_at=now - timedelta(minutes=1),
                ),
            ]
        )
        task = make_ready_task(session, root.project_id, "patch")
        session.get(Build, task.current_build_id).lease_owner = "live-1"
    viewer, _ = browser_as(console, api, "viewer")
    page = viewer.get("/ui/runners")
    assert page.status_code == 200

    def row(runner_id: str) -> str:
        return page.text.split(f'<tr data-runner="{runner_id}">')[1].split("</tr>")[0]

    assert '<span class="alive">alive</span>' in row("live-1") and "docker" in row("live-1")
    builds = row("live-1").split("<td>")[6]
    assert builds.startswith("1 ")  # the build it holds a lease on
    assert '<span class="dead">silent</span>' in row("gone-1") and "swarm" in row("gone-1")
    assert "5m 0" in row("gone-1")  # heard from five minutes ago
    assert "stopped" in row("done-1") and "&lt;b&gt;rack-c&lt;/b&gt;" in row("done-1")


def test_no_runner_says_how_to_start_one(signed_in: Browser) -> None:
    assert "No runner has registered" in signed_in.get("/ui/runners").text
