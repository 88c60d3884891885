"""Secrets and the task's token in a real container on the Docker engine."""

from __future__ import annotations

from sqlalchemy import select

from craton_wf.db.engine import transaction
from craton_wf.db.models import ApiToken, Run, RunLog, Secret, Task, User
from craton_wf.domain.states import BuildStatus, JobStatus
from craton_wf.services import jobs as job_service
from craton_wf.services import project_secrets
from craton_wf.services.inputs import SecretCreate
from tests.factories import approve_current_build, make_inventory
from tests.integration.test_platform import (
    docker_settings,
    runner,
    upload_task,
    wait_build,
    wait_job,
)

__all__ = ["docker_settings", "runner"]  # fixtures shared with test_platform

SCRIPT = """#!/bin/sh
echo "key=$API_KEY"
echo "multi=$CERT"
echo "url=$CRATON_URL token=${CRATON_TOKEN:+present} prefix=$(echo "$CRATON_TOKEN" | cut -c1-4)"
case "$1" in *hunter2-value*) echo "the payload holds the secret";; esac
env | grep -c -e '^OTHER=' || true
"""


def test_secrets_are_env_in_the_container_and_redacted_in_the_stored_log(
    sessions, root, runner, docker_settings
):
    files = {
        "Dockerfile": "FROM craton/busybox:latest\nCOPY step.sh /step.sh\n",
        "step.sh": SCRIPT,
    }
    task_id = upload_task(sessions, root, "uses-secrets", files)
    assert wait_build(sessions, task_id).status == BuildStatus.READY
    fernet = project_secrets.cipher(docker_settings)
    with transaction(sessions) as session:
        approve_current_build(session, task_id)
        for name, value in (
            ("API_KEY", "hunter2-value"),
            ("CERT", "line-one\nline-two"),
            ("OTHER", "not-named"),
        ):
            project_secrets.create_secret(
                session, fernet, root.project_id, None, SecretCreate(name=name, value=value)
            )
        session.get(Task, task_id).secrets = ["API_KEY", "CERT"]
        user_id = session.execute(select(User.id).where(User.name == root.user)).scalar_one()
        hosts = make_inventory(session, root.project_id, 1)
        job_id = job_service.create_job(
            session, root.project_id, user_id, {"task": task_id, "hosts": [hosts[0].id]}
        ).id
    runner.wakeup.set()
    job = wait_job(sessions, job_id)
    assert job.status == JobStatus.SUCCEEDED
    with transaction(sessions) as session:
        lines = [
            log.line
            for log in session.execute(
                select(RunLog).where(RunLog.job_id == job_id).order_by(RunLog.seq)
            ).scalars()
        ]
        tokens = list(session.execute(select(ApiToken).where(ApiToken.job_id == job_id)).scalars())
    assert "key=[redacted]" in lines
    assert "multi=[redacted]" in lines and "[redacted]" in lines  # each line of a multi-line value
    assert not any("hunter2" in line or "line-one" in line for line in lines)
    assert "the payload holds the secret" not in lines
    assert lines[-1] == "0"  # OTHER was not named by the task
    url = [line for line in lines if line.startswith("url=")][0]
    assert url == (
        f"url=http://host.docker.internal:{docker_settings.api_port} token=present prefix=cwf_"
    )
    assert len(tokens) == 1 and tokens[0].revoked_at is not None  # died with the run


BASH_STEP = """#!/bin/bash
echo "greeting: ${GREETING:-none}"
"""


def test_a_stored_job_naming_bash_env_is_refused_by_the_runner(
    sessions, root, runner, docker_settings, python_image
):
    """A job stored before ``BASH_ENV`` was refused as a name (its steps hand the
    task a secret of that name) never starts a container: the run fails saying
    why, and nothing the secret's value would have run shows in its log."""
    files = {"Dockerfile": f"FROM {python_image}\nCOPY step.sh /step.sh\n", "step.sh": BASH_STEP}
    task_id = upload_task(sessions, root, "bash-step", files)
    assert wait_build(sessions, task_id).status == BuildStatus.READY
    fernet = project_secrets.cipher(docker_settings)
    with transaction(sessions) as session:
        approve_current_build(session, task_id)
        task = session.get(Task, task_id)
        task.command = ["bash", "/step.sh"]
        task.secrets = ["GREETING"]
        project_secrets.create_secret(
            session,
            fernet,
            root.project_id,
            None,
            SecretCreate(name="GREETING", value="hello-there"),
        )
        # As a row from before the rule: written around the service's name check.
        session.add(
            Secret(
                project_id=root.project_id,
                name="BASH_ENV",
                ciphertext=fernet.encrypt(b"$(echo INJECTED >&2)").decode(),
            )
        )
        hosts = make_inventory(session, root.project_id, 2)
        plain = job_service.create_job(
            session, root.project_id, None, {"task": task_id, "hosts": [hosts[0].id]}
        )
        attacked = job_service.create_job(
            session, root.project_id, None, {"task": task_id, "hosts": [hosts[1].id]}
        )
        attacked.steps = [{**step, "secrets": ["BASH_ENV", "GREETING"]} for step in attacked.steps]
        plain_id, attacked_id = plain.id, attacked.id
    runner.wakeup.set()
    assert wait_job(sessions, plain_id).status == JobStatus.SUCCEEDED
    assert wait_job(sessions, attacked_id).status == JobStatus.FAILED
    with transaction(sessions) as session:
        (run,) = session.execute(select(Run).where(Run.job_id == attacked_id)).scalars()
        assert run.container_id is None  # no container was made
        assert run.error.startswith("could not prepare the run: secret name 'BASH_ENV' is refused")
        logs = {
            job_id: [
                log.line
                for log in session.execute(
                    select(RunLog).where(RunLog.job_id == job_id).order_by(RunLog.seq)
                ).scalars()
            ]
            for job_id in (plain_id, attacked_id)
        }
    assert logs[plain_id] == ["greeting: [redacted]"]
    assert not any("INJECTED" in line for lines in logs.values() for line in lines)


ENV_SCRIPT = """#!/bin/sh
env
echo "length=${#CRATON_TOKEN}"
echo "bearer $CRATON_TOKEN."
echo "cut=$(echo "$CRATON_TOKEN" | cut -c1-24)"
"""


def test_a_task_printing_its_environment_stores_no_token(sessions, root, runner):
    files = {
        "Dockerfile": "FROM craton/busybox:latest\nCOPY step.sh /step.sh\n",
        "step.sh": ENV_SCRIPT,
    }
    task_id = upload_task(sessions, root, "prints-env", files)
    assert wait_build(sessions, task_id).status == BuildStatus.READY
    with transaction(sessions) as session:
        approve_current_build(session, task_id)
        user_id = session.execute(select(User.id).where(User.name == root.user)).scalar_one()
        hosts = make_inventory(session, root.project_id, 1)
        job_id = job_service.create_job(
            session, root.project_id, user_id, {"task": task_id, "hosts": [hosts[0].id]}
        ).id
    runner.wakeup.set()
    assert wait_job(sessions, job_id).status == JobStatus.SUCCEEDED
    with transaction(sessions) as session:
        lines = list(
            session.execute(
                select(RunLog.line).where(RunLog.job_id == job_id).order_by(RunLog.seq)
            ).scalars()
        )
    assert "length=47" in lines  # the task had its token, and printed it three ways
    assert "CRATON_TOKEN=[redacted]" in lines
    assert "bearer [redacted]." in lines and "cut=[redacted]" in lines
    assert not any("cwf_" in line for line in lines)
