"""Schedules: fire times in a time zone (daylight saving time computed, not waited
for), the API, and firing driven by a fake clock: ``fire_due_schedules(now=…)``
is what every runner calls every few seconds, so five minutes of an
every-minute schedule are fired here in well under a second. On PostgreSQL
(CRATON_WF_TEST_DATABASE_URL) the concurrent firers are real transactions
racing on real row locks."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import islice
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from craton_wf.db.engine import transaction
from craton_wf.db.models import Job, JobHost, Schedule, ScheduleFire
from craton_wf.domain.cron import fire_times
from craton_wf.engine.schedule_firing import fire_due_schedules
from craton_wf.errors import InvalidInput
from craton_wf.services.schedules import launch_scheduled
from tests.factories import make_inventory, make_ready_task

NEW_YORK = ZoneInfo("America/New_York")
T0 = datetime(2026, 6, 1, 10, 0, 30, tzinfo=UTC)  # half a minute before 10:01


def local(instants: list[datetime]) -> list[str]:
    return [t.astimezone(NEW_YORK).strftime("%m-%d %H:%M %Z") for t in instants]


def test_spring_forward_a_time_that_does_not_exist_fires_after_the_jump() -> None:
    start = datetime(2026, 3, 7, 12, tzinfo=UTC)
    fires = list(islice(fire_times("30 2 * * *", "America/New_York", start), 3))
    assert local(fires) == ["03-08 03:30 EDT", "03-09 02:30 EDT", "03-10 02:30 EDT"]
    hourly = list(
        islice(fire_times("0 * * * *", "America/New_York", start + timedelta(hours=16)), 4)
    )
    assert local(hourly) == [
        "03-08 00:00 EST",
        "03-08 01:00 EST",
        "03-08 03:00 EDT",
        "03-08 04:00 EDT",
    ]
    assert [b - a for a, b in zip(hourly, hourly[1:], strict=False)] == [timedelta(hours=1)] * 3


def test_fall_back_a_time_that_happens_twice_fires_once() -> None:
    start = datetime(2026, 10, 31, 12, tzinfo=UTC)
    daily = list(islice(fire_times("30 1 * * *", "America/New_York", start), 2))
    assert local(daily) == ["11-01 01:30 EDT", "11-02 01:30 EST"]
    assert daily[1] - daily[0] == timedelta(hours=25)
    midnight = list(islice(fire_times("@daily", "America/New_York", start), 3))
    assert local(midnight) == ["11-01 00:00 EDT", "11-02 00:00 EST", "11-03 00:00 EST"]


def test_a_bad_cron_or_time_zone_is_refused_naming_it() -> None:
    for cron in ("* * * *", "0 0 0 * * *", "61 * * * *", "@sometimes"):
        with pytest.raises(InvalidInput, match="cron"):
            next(fire_times(cron, "UTC", T0))
    with pytest.raises(InvalidInput, match="unknown time zone 'Mars/Olympus'"):
        next(fire_times("@daily", "Mars/Olympus", T0))


# --- the API ------------------------------------------------------------------------


@pytest.fixture
def template(api, sessions, root) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        make_inventory(session, root.project_id, 2)
        make_ready_task(session, root.project_id, "disk-audit", command="true", kind="audit")
    made = api.post(
        "/v1/job-templates",
        json={
            "name": "nightly-disks",
            "task": "disk-audit",
            "targets": {"filters": {"label": "compute"}},
            "parameters": [{"name": "mode", "type": "choice", "choices": ["quick", "full"]}],
        },
    )
    assert made.status_code == 201, made.text
    return made.json()


def schedule(api, **fields: Any) -> Any:  # type: ignore[no-untyped-def]
    body = {"name": "nightly", "template": "nightly-disks", "cron": "@daily"} | fields
    return api.post("/v1/schedules", json=body)


def test_schedules_through_the_api(api, template):  # type: ignore[no-untyped-def]
    made = schedule(api, cron="0 2 * * *", timezone="America/New_York", params={"mode": "full"})
    assert made.status_code == 201, made.text
    body = made.json()
    assert made.headers["Location"].endswith(f"/v1/schedules/{body['id']}")
    assert body["template_name"] == "nightly-disks" and body["missed_policy"] == "skip"
    fires = [datetime.fromisoformat(t) for t in body["next_fires"]]
    assert len(fires) == 3 and fires[0] > datetime.now(UTC)
    assert all(t.astimezone(NEW_YORK).hour == 2 for t in fires)
    listed = api.get("/v1/schedules").json()
    assert [s["name"] for s in listed["schedules"]] == ["nightly"] and listed["links"]

    paused = api.post(f"/v1/schedules/{body['id']}/pause").json()
    assert paused["paused"] is True and paused["next_fires"] == [] and not paused["next_fire_at"]
    resumed = api.post("/v1/schedules/nightly/resume").json()
    assert resumed["paused"] is False and resumed["next_fires"] == body["next_fires"]
    changed = api.put("/v1/schedules/nightly", json={"overlap_policy": "queue"}).json()
    assert changed["overlap_policy"] == "queue"
    assert api.get(f"/v1/schedules/{body['id']}/fires").json() == {"fires": []}
    assert api.delete("/v1/schedules/nightly").status_code == 204
    assert api.get(f"/v1/schedules/{body['id']}").status_code == 404


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"cron": "*/5 * * *"}, 400, "five fields"),
        ({"cron": "@fortnightly"}, 400, "aliases are"),
        ({"timezone": "Europe/Atlantis"}, 400, "unknown time zone 'Europe/Atlantis'"),
        ({"missed_policy": "later"}, 422, "missed_policy"),
        ({"overlap_policy": "stack"}, 422, "overlap_policy"),
        ({"params": {"mode": "slow"}}, 422, "'slow' is not one of quick, full"),
        ({"params": {"colour": "red"}}, 422, "unknown parameter 'colour'"),
        ({"template": "nope"}, 404, "nope"),
    ],
)
def test_a_wrong_schedule_is_refused_naming_why(api, template, fields, status, message):  # type: ignore[no-untyped-def]
    answer = schedule(api, **fields)
    assert answer.status_code == status, answer.text
    assert message in answer.text


def test_another_projects_schedule_does_not_exist(api, template, sessions):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from craton_wf.db.models import Project, RoleAssignment, User
    from craton_wf.services.auth import issue_token

    made = schedule(api).json()
    with transaction(sessions) as session:
        other = Project(name="other", variables={})
        session.add(other)
        session.flush()
        user = User(name="other-admin", default_project_id=other.id)
        session.add(user)
        session.flush()
        session.add(RoleAssignment(user_id=user.id, project_id=other.id, role="admin"))
        token = issue_token(session, user, name="t", project_id=other.id).token
    stranger = TestClient(
        api.app, headers={"X-Auth-Project": other.id, "Authorization": f"Bearer {token}"}
    )
    for method, path in [
        ("GET", f"/v1/schedules/{made['id']}"),
        ("PUT", f"/v1/schedules/{made['id']}"),
        ("DELETE", f"/v1/schedules/{made['id']}"),
        ("POST", f"/v1/schedules/{made['id']}/pause"),
        ("POST", f"/v1/schedules/{made['id']}/resume"),
        ("GET", f"/v1/schedules/{made['id']}/fires"),
    ]:
        answer = stranger.request(method, path, json={} if method == "PUT" else None)
        assert answer.status_code == 404, (method, path, answer.text)
    assert stranger.get("/v1/schedules").json()["schedules"] == []


# --- firing, on a fake clock ----------------------------------------------------------------


def start_at(sessions: Any, name: str, when: datetime) -> None:
    """Move the schedule's first fire to the first one after ``when`` (the fake clock's start)."""
    with transaction(sessions) as session:
        row = session.execute(select(Schedule).where(Schedule.name == name)).scalar_one()
        row.next_fire_at = next(fire_times(row.cron, row.timezone, when))


def fire(sessions: Any, now: datetime) -> int:
    return fire_due_schedules(sessions, partial(launch_scheduled, require_approval=True), now=now)


def counts(sessions: Any) -> tuple[int, dict[str, int], list[datetime]]:
    with transaction(sessions) as session:
        jobs = session.execute(select(func.count()).select_from(Job)).scalar_one()
        outcomes = dict(
            session.execute(
                select(ScheduleFire.outcome, func.count()).group_by(ScheduleFire.outcome)
            ).all()
        )
        launched = list(
            session.execute(
                select(ScheduleFire.fire_time)
                .where(ScheduleFire.outcome == "launched")
                .order_by(ScheduleFire.fire_time)
            ).scalars()
        )
    return jobs, outcomes, launched


def minutes(count: int) -> list[datetime]:
    return [datetime(2026, 6, 1, 10, 1 + i, tzinfo=UTC) for i in range(count)]


def test_every_minute_over_five_minutes_is_five_jobs(api, template, sessions):  # type: ignore[no-untyped-def]
    assert schedule(api, cron="* * * * *", params={"mode": "quick"}).status_code == 201
    start_at(sessions, "nightly", T0)
    for step in range(0, 5 * 60 + 1, 5):  # a runner's poll every 5 s, from 10:00:30 to 10:05:30
        fire(sessions, T0 + timedelta(seconds=step))
    jobs, outcomes, launched = counts(sessions)
    assert (jobs, outcomes, launched) == (5, {"launched": 5}, minutes(5))
    shown = api.get("/v1/jobs").json()["jobs"]
    assert {j["template_params"]["mode"] for j in shown} == {"quick"}
    fires = api.get("/v1/schedules/nightly/fires").json()["fires"]
    assert [f["outcome"] for f in fires] == ["launched"] * 5 and all(f["job_id"] for f in fires)


@pytest.mark.parametrize("firers", [3])
def test_concurrent_firers_make_exactly_one_job_per_fire(api, template, sessions, firers):  # type: ignore[no-untyped-def]
    """Three firers (runners' supervision threads, each its own transactions) poll
    the same fake clock at once: each fire is one job, whoever wins it."""
    assert schedule(api, cron="* * * * *").status_code == 201
    start_at(sessions, "nightly", T0)
    steps = list(range(0, 5 * 60 + 1, 5))
    barrier = threading.Barrier(firers)
    made: list[int] = [0] * firers
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            for step in steps:
                barrier.wait(timeout=30)
                made[index] += fire(sessions, T0 + timedelta(seconds=step))
        except BaseException as exc:  # noqa: BLE001 - shown by the assertion below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(firers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    jobs, outcomes, launched = counts(sessions)
    assert sum(made) == 5 and jobs == 5 and launched == minutes(5), (made, outcomes)


def test_missed_fires_skip_goes_on_run_once_makes_one_job(api, template, sessions):  # type: ignore[no-untyped-def]
    assert schedule(api, name="skips", cron="* * * * *").status_code == 201
    assert (
        schedule(api, name="catches-up", cron="* * * * *", missed_policy="run-once").status_code
        == 201
    )
    start_at(sessions, "skips", T0)
    start_at(sessions, "catches-up", T0)
    back = T0 + timedelta(minutes=10)  # everything was down from 10:00:30 to 10:10:30
    # catches-up: one job for the nine missed; both: a job for 10:10, on time
    assert fire(sessions, back) == 3
    with transaction(sessions) as session:
        rows = session.execute(
            select(
                Schedule.name, ScheduleFire.outcome, ScheduleFire.fire_time, ScheduleFire.message
            )
            .join(Schedule, Schedule.id == ScheduleFire.schedule_id)
            .order_by(Schedule.name, ScheduleFire.fire_time)
        ).all()
        next_at = dict(session.execute(select(Schedule.name, Schedule.next_fire_at)).all())
    ten = datetime(2026, 6, 1, 10, 10, tzinfo=UTC)
    nine = ten - timedelta(minutes=1)
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("catches-up", "launched", nine),
        ("catches-up", "launched", ten),
        ("skips", "missed", nine),
        ("skips", "launched", ten),
    ]
    assert rows[0][3] == "for 9 missed" and rows[2][3] == "9 fire(s) missed"
    assert set(next_at.values()) == {ten + timedelta(minutes=1)}


def _finish_jobs(sessions: Any) -> None:
    with transaction(sessions) as session:
        for job in session.execute(select(Job)).scalars():
            job.status = "SUCCEEDED"
        for host in session.execute(select(JobHost)).scalars():
            host.status = "SUCCEEDED"


@pytest.mark.parametrize(
    ("policy", "jobs_while_running", "outcomes"),
    [
        ("allow", 2, {"launched": 2}),
        ("skip-if-running", 1, {"launched": 1, "skipped": 1}),
        ("queue", 1, {"launched": 1, "queued": 1}),
    ],
)
def test_overlap_while_the_last_job_runs(
    api, template, sessions, policy, jobs_while_running, outcomes
):  # type: ignore[no-untyped-def]
    assert schedule(api, cron="* * * * *", overlap_policy=policy).status_code == 201
    start_at(sessions, "nightly", T0)
    fire(sessions, T0 + timedelta(seconds=30))  # 10:01: a job, not finished (no runner here)
    fire(sessions, T0 + timedelta(seconds=90))  # 10:02, while it has not finished
    jobs, found, _ = counts(sessions)
    assert (jobs, found) == (jobs_while_running, outcomes)
    if policy == "queue":
        assert fire(sessions, T0 + timedelta(seconds=95)) == 0  # still running: still queued
        _finish_jobs(sessions)
        assert fire(sessions, T0 + timedelta(seconds=100)) == 1  # the queued 10:02 fire
        jobs, found, launched = counts(sessions)
        assert (jobs, found, launched) == (2, {"launched": 2}, minutes(2))


class RunnerDied(BaseException):
    """What a SIGKILL does to a transaction: it never commits (not a CratonError,
    so nothing records it as a failed fire)."""


def test_a_firer_that_dies_after_its_claim_loses_and_doubles_nothing(api, template, sessions):  # type: ignore[no-untyped-def]
    assert schedule(api, cron="* * * * *").status_code == 201
    start_at(sessions, "nightly", T0)
    claimed: list[Any] = []

    def die_after_claim(session: Any, row: Schedule) -> int:
        claimed.append(row.next_fire_at)  # the claim moved it on, in this transaction
        raise RunnerDied

    now = T0 + timedelta(seconds=40)  # 10:01:10, the 10:01 fire is due
    with pytest.raises(RunnerDied):
        fire_due_schedules(sessions, die_after_claim, now=now)
    assert claimed == [datetime(2026, 6, 1, 10, 2, tzinfo=UTC)]
    assert counts(sessions) == (0, {}, [])  # nothing of the dead firer's transaction is left
    assert fire(sessions, now + timedelta(seconds=2)) == 1  # another runner, 2 s later
    assert fire(sessions, now + timedelta(seconds=4)) == 0
    assert counts(sessions) == (1, {"launched": 1}, minutes(1))
