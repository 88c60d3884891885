"""A networked task calls the API over https, on the real Docker engine.

The API serves https on loopback only (as ``serve --tls-cert`` does), the
runner's forwarder relays the task's connection byte for byte, and the task
verifies the API's certificate (made for ``host.docker.internal``) by the CA
the runner gave it as ``CRATON_CACERT_PEM``, with Python's ``ssl`` in a task
image built from the local Python base.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from craton_wf.api.tls import uvicorn_tls_options
from tests.certificates import make_ca
from tests.integration.test_task_network import free_port, networked_runner  # noqa: F401

pytestmark = [pytest.mark.docker, pytest.mark.slow]

PYTHON_BASE = "craton/python:3"

# Reads the job's hosts at CRATON_URL, trusting only the CA it was given.
READS_ITS_HOSTS_OVER_HTTPS = """#!/bin/sh
exec python3 - <<'EOF'
import json, os, ssl, urllib.request
print("url=" + os.environ["CRATON_URL"])
context = ssl.create_default_context(cadata=os.environ["CRATON_CACERT_PEM"])
request = urllib.request.Request(
    os.environ["CRATON_URL"] + "/v1/hosts",
    headers={"Authorization": "Bearer " + os.environ["CRATON_TOKEN"]},
)
print(urllib.request.urlopen(request, context=context, timeout=20).read().decode())
try:
    urllib.request.urlopen(os.environ["CRATON_URL"] + "/healthz", timeout=20)
    print("unverified: answered")
except ssl.SSLError as exc:
    print("unverified: refused " + type(exc).__name__)
except OSError as exc:
    print("unverified: refused " + type(exc.reason).__name__)
EOF
"""


@pytest.fixture
def api_settings(settings, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The embedded default over https: the API on loopback only, a certificate for
    the name tasks use, and its CA for the tasks."""
    import docker

    client = docker.from_env()
    try:
        client.images.get(PYTHON_BASE)
    except docker.errors.ImageNotFound:
        pytest.skip(f"no {PYTHON_BASE} image (scripts/make-base-images.sh makes it)")
    finally:
        client.close()
    ca = make_ca(tmp_path / "pki")
    server = ca.issue("host.docker.internal", server=True)
    return settings.model_copy(
        update={
            "executor": "docker",
            "image_prefix": "craton-itest",
            "api_host": "127.0.0.1",
            "api_port": free_port(),
            "tls_cert": server.cert,
            "tls_key": server.key,
            "tls_task_ca": ca.cert,
        }
    )


@pytest.fixture
def live_https_api(api_settings, sessions) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The real app served by uvicorn over https, with ``serve``'s TLS options."""
    import uvicorn

    from craton_wf.api.app import create_app

    config = uvicorn.Config(
        create_app(api_settings, sessions),
        host=api_settings.api_host,
        port=api_settings.api_port,
        log_level="warning",
        **uvicorn_tls_options(api_settings),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the API did not start"
    yield f"https://{api_settings.api_host}:{api_settings.api_port}"
    server.should_exit = True
    thread.join(timeout=15)


def test_a_networked_task_verifies_the_api_by_the_ca_it_was_given(
    sessions,
    root,
    live_https_api,
    networked_runner,  # noqa: F811
):  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from craton_wf.db.engine import transaction
    from craton_wf.db.models import RunLog, Task, User
    from craton_wf.domain.states import BuildStatus, JobStatus
    from craton_wf.services import jobs as job_service
    from tests.factories import approve_current_build, make_inventory
    from tests.integration.test_platform import upload_task, wait_build, wait_job

    files = {
        "Dockerfile": f"FROM {PYTHON_BASE}\nCOPY step.sh /step.sh\n",
        "step.sh": READS_ITS_HOSTS_OVER_HTTPS,
    }
    task_id = upload_task(sessions, root, "reads-hosts-https", files)
    assert wait_build(sessions, task_id).status == BuildStatus.READY
    with transaction(sessions) as session:
        session.get(Task, task_id).needs_network = True
        approve_current_build(session, task_id)
        user_id = session.execute(select(User.id).where(User.name == root.user)).scalar_one()
        hosts = make_inventory(session, root.project_id, 2)
        job_id = job_service.create_job(
            session, root.project_id, user_id, {"task": task_id, "hosts": [hosts[1].id]}
        ).id
    networked_runner.wakeup.set()
    job = wait_job(sessions, job_id)
    with transaction(sessions) as session:
        lines = [
            log.line
            for log in session.execute(
                select(RunLog).where(RunLog.job_id == job_id).order_by(RunLog.seq)
            ).scalars()
        ]
    assert job.status == JobStatus.SUCCEEDED, lines
    port = live_https_api.rsplit(":", 1)[1]
    assert lines[0] == f"url=https://host.docker.internal:{port}"
    assert [host["name"] for host in json.loads(lines[1])["hosts"]] == ["host-001"]
    # Without the CA the certificate is not trusted: the check is real.
    assert lines[2].startswith("unverified: refused"), lines
