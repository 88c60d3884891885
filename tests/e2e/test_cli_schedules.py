"""Schedules through the real ``craton`` CLI against a live ``craton-wf serve`` whose
embedded runner fires them (fake executor): a schedule every minute launches its
template at the next minute with the schedule's parameters; schedule-list shows the
next fire in the schedule's time zone; a paused schedule shows no fire; a bad cron
or time zone is an ``ERROR:`` naming it. Waits for one real minute boundary at most."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from craton_wf.db.engine import make_engine, make_session_factory, transaction
from craton_wf.settings import Settings
from tests.e2e.conftest import start_server, stop
from tests.factories import make_inventory, make_ready_task

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def test_a_schedule_fires_its_template_on_the_live_runner(
    database_url: str, tmp_path: Path
) -> None:
    server = start_server(database_url, tmp_path, embedded=True, executor="fake")
    engine = make_engine(Settings(database_url=database_url))
    try:
        with transaction(make_session_factory(engine)) as session:
            project = server.env["OS_PROJECT_ID"]
            make_inventory(session, project, 2)
            make_ready_task(session, project, "disk-audit", command="audit", kind="audit")
        server.json(
            "template-create",
            "disks",
            "--task",
            "disk-audit",
            "--label",
            "compute",
            "--parameter",
            "name=mode,type=choice,choices=quick|full,required",
        )
        bad = server.craton(
            "schedule-create", "x", "--template", "disks", "--cron", "* * *", check=False
        )
        assert bad.returncode != 0 and bad.stderr.strip().endswith(
            "ERROR: cron '* * *': five fields (minute hour day-of-month month day-of-week), "
            "or an alias like @daily"
        )
        zone = server.craton(
            "schedule-create",
            "x",
            "--template",
            "disks",
            "--cron",
            "@daily",
            "--timezone",
            "Moon/Base",
            check=False,
        )
        assert zone.returncode != 0 and "unknown time zone 'Moon/Base'" in zone.stderr

        made = server.json(
            "schedule-create",
            "every-minute",
            "--template",
            "disks",
            "--cron",
            "* * * * *",
            "--timezone",
            "America/New_York",
            "--param",
            "mode=quick",
        )
        assert len(made["next_fires"]) == 3  # type: ignore[index]
        listed = server.craton("schedule-list").stdout
        assert "every-minute" in listed and ("EST" in listed or "EDT" in listed)

        deadline = time.monotonic() + 90
        jobs: list = []
        while time.monotonic() < deadline and not jobs:
            time.sleep(1)
            jobs = server.json("job-list", "--all")  # type: ignore[assignment]
        assert len(jobs) == 1, "no job within 90 s of an every-minute schedule"
        job = server.json("job-show", str(jobs[0]["id"]))
        assert job["template_params"] == {"mode": "quick"}  # type: ignore[index]
        fires = server.json("schedule-fires", "every-minute")
        assert [f["outcome"] for f in fires] == ["launched"]  # type: ignore[index]
        assert fires[0]["job_id"] == jobs[0]["id"]  # type: ignore[index]

        paused = server.json("schedule-pause", "every-minute")
        assert paused["paused"] is True and paused["next_fires"] == []  # type: ignore[index]
        assert "paused" in server.craton("schedule-list").stdout
        resumed = server.json("schedule-resume", "every-minute")
        assert resumed["paused"] is False and len(resumed["next_fires"]) == 3  # type: ignore[index]
        server.craton("schedule-delete", "every-minute")
        assert server.json("schedule-list") == []
    finally:
        stop(server.processes)
        engine.dispose()
