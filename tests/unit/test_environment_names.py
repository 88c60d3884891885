"""Names that steer how a task's programs start are refused wherever a name reaches
a container's environment: a secret, a task's declared secrets, a workflow step."""

from __future__ import annotations

import pytest

from craton_wf.db.engine import transaction
from craton_wf.domain.environment import refused_name_reason
from tests.factories import make_ready_task

# The list, and a few more of each kind; either case.
REFUSED = [
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "ld_audit",
    "BASH_ENV",
    "ENV",
    "SHELLOPTS",
    "BASHOPTS",
    "PS4",
    "PROMPT_COMMAND",
    "IFS",
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PYTHONHOME",
    "PERL5OPT",
    "PERL5LIB",
    "PERLLIB",
    "RUBYOPT",
    "RUBYLIB",
    "NODE_OPTIONS",
    "NODE_PATH",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "GCONV_PATH",
    "GIT_SSH_COMMAND",
    "GIT_CONFIG_GLOBAL",
    "HOSTALIASES",
    "LOCPATH",
    "MALLOC_CHECK_",
    "OPENSSL_CONF",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "http_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "no_proxy",
    "PATH",
    "HOME",
    "CRATON_TOKEN",
    "CRATON_URL",
    "craton_anything",
    "GLIBC_TUNABLES",
]
ALLOWED = ["API_KEY", "DB_PASSWORD", "GREETING", "LDAP_PASSWORD", "ENVIRONMENT", "PATHS", "HOMER"]


@pytest.mark.parametrize("name", REFUSED)
def test_each_refused_name_has_a_reason(name):
    assert refused_name_reason(name) is not None


@pytest.mark.parametrize("name", ALLOWED)
def test_ordinary_names_are_allowed(name):
    assert refused_name_reason(name) is None


@pytest.mark.parametrize("name", REFUSED)
def test_no_way_in_takes_a_refused_name(api, sessions, root, name):
    secret = api.post("/v1/secrets", json={"name": name, "value": "some-value"})
    assert secret.status_code == 422, secret.text
    body = secret.json()
    assert body["code"] == "environment_name_refused" and name in body["message"]
    assert "some-value" not in secret.text

    task = api.post(
        "/v1/tasks",
        json={
            "name": "t",
            "location": "https://example.invalid/t.git",
            "command": "run",
            "secrets": [name],
        },
    )
    assert task.status_code == 422 and name in task.json()["message"]
    assert api.get("/v1/tasks").json()["tasks"] == []  # nothing half-made

    with transaction(sessions) as session:
        plain = make_ready_task(session, root.project_id, "plain").id
    updated = api.put(f"/v1/tasks/{plain}", json={"secrets": [name]})
    assert updated.status_code == 422 and name in updated.json()["message"]

    step = api.post(
        "/v1/workflows", json={"name": "wf", "steps": [{"task": "plain", "secrets": [name]}]}
    )
    assert step.status_code == 422 and name in step.json()["message"]
    assert api.get("/v1/workflows").json()["workflows"] == []


def test_a_step_hands_its_task_only_declared_secrets_on_create_and_update(api, sessions, root):
    with transaction(sessions) as session:
        make_ready_task(session, root.project_id, "declares", secrets=["API_KEY"])
        make_ready_task(session, root.project_id, "plain")
    made = api.post(
        "/v1/workflows",
        json={"name": "wf", "steps": [{"task": "declares", "secrets": ["API_KEY"]}, "plain"]},
    )
    assert made.status_code == 201, made.text
    workflow = made.json()["id"]
    sneaky = api.put(
        f"/v1/workflows/{workflow}",
        json={
            "steps": [
                {"task": "declares"},
                {"name": "second", "task": "plain", "secrets": ["API_KEY"]},
            ]
        },
    )
    assert sneaky.status_code == 422
    assert sneaky.json()["message"].startswith(
        "step 'second': task 'plain' does not declare the secret API_KEY"
    )
    # No version was stored.
    assert api.get(f"/v1/workflows/{workflow}").json()["latest_version"] == 1
