"""Users, roles, tokens and the audit trail through the real `craton` CLI against a live
`craton-wf serve`: an admin adds an auditor, issues a token for them; the auditor reads
but may not change the inventory; the token is revoked and stops working; the refused
and the accepted calls are in the audit trail."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.timeout(300)


def test_roles_and_tokens_through_the_cli(server):  # type: ignore[no-untyped-def]
    made = server.json("user-create", "--name", "ann", "--role", "auditor")
    assert made["name"] == "ann" and made["role"] == "auditor"
    users = {u["name"]: u["role"] for u in server.json("user-list")}
    assert users == {"root": "admin", "ann": "auditor"}
    assert server.json("user-update", "ann", "--role", "viewer")["role"] == "viewer"
    assert server.json("user-update", "ann", "--role", "auditor")["role"] == "auditor"

    issued = server.craton(
        "--format",
        "json",
        "token-create",
        "--user",
        "ann",
        "--name",
        "laptop",
        "--expires-in",
        "3600",
    )
    token = json.loads(issued.stdout)
    assert token["token"].startswith("cwf_") and token["user"] == "ann"
    assert "cannot be shown again" in issued.stderr
    listed = server.json("token-list")
    assert token["id"] in {t["id"] for t in listed} and all("token" not in t for t in listed)

    ann = {"OS_USERNAME": "ann", "OS_PASSWORD": token["token"]}
    server.env, saved = {**server.env, **ann}, server.env
    try:
        assert server.json("cloud-list") == []  # reads
        refused = server.craton("cloud-create", "--name", "nope", check=False)
        assert refused.returncode == 3  # the server refused
        assert refused.stderr.startswith("ERROR: POST /v1/clouds needs the admin role")
        denied = server.craton("audit-list", check=False)
        assert denied.returncode == 3 and "needs the admin role" in denied.stderr
    finally:
        server.env = saved

    server.craton("token-revoke", str(token["id"]))
    server.env = {**server.env, **ann}
    try:
        gone = server.craton("cloud-list", check=False)
        assert gone.returncode == 3 and "invalid or expired token" in gone.stderr
    finally:
        server.env = saved

    events = server.json("audit-list", "--object-type", "cloud")
    assert [(e["user_name"], e["action"], e["outcome"]) for e in events] == [
        ("ann", "cloud.create", "failure")
    ]
    assert server.json("audit-list", "--action", "token.delete")[0]["user_name"] == "root"
    table = server.craton("audit-list", "--outcome", "failure").stdout
    assert "cloud.create" in table and "ann" in table

    server.craton("user-delete", "ann")
    assert {u["name"] for u in server.json("user-list")} == {"root"}


def test_secrets_through_the_cli_are_never_shown_back(server, tmp_path):  # type: ignore[no-untyped-def]
    value = tmp_path / "value"
    value.write_text("e2e-secret-value\n")
    made = server.json("secret-create", "--name", "DB_PASSWORD", "--value-file", str(value))
    assert made["name"] == "DB_PASSWORD" and "value" not in made
    listed = server.craton("secret-list")
    assert "DB_PASSWORD" in listed.stdout and "e2e-secret-value" not in listed.stdout
    again = server.craton(
        "secret-create", "--name", "DB_PASSWORD", "--value-file", str(value), check=False
    )
    assert again.returncode == 3 and "already exists" in again.stderr
    server.craton("secret-delete", "DB_PASSWORD")
    assert server.json("secret-list") == []
    events = server.json("audit-list", "--object-type", "secret")
    assert [e["action"] for e in events] == ["secret.delete", "secret.create", "secret.create"]
    assert [e["outcome"] for e in events] == ["success", "failure", "success"]
