"""The ``craton`` command line, run through ``main(argv)`` against the scripted API."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import types
from pathlib import Path

import httpx
import pytest
import yaml

import cratonclient
from cratonclient.shell import _watch
from cratonclient.shell.main import build_parser, main

HOST = {
    "id": 3,
    "name": "compute-1",
    "ip_address": "10.0.0.3",
    "device_type": "server",
    "region_id": 1,
    "cell_id": None,
    "labels": ["compute"],
    "variables": {"hw": {"vendor": "dell"}},
    "active": True,
}


def host(i: int, **fields) -> dict:
    return {**HOST, "id": i, "name": f"compute-{i}", **fields}


# -- errors ------------------------------------------------------------------------


def test_not_found_prints_the_servers_message_and_exits_3(router, cli) -> None:
    router.add("GET", "/v1/hosts/42", router.error(404, "Host 42 not found.", "not_found"))

    result = cli("host-show", "42")

    assert result.code == 3
    assert result.err == "ERROR: Host 42 not found.\n"
    assert result.out == ""


def test_unknown_name_is_an_error(router, cli) -> None:
    router.collection("/v1/hosts", "hosts", [host(1)])

    result = cli("host-show", "nope")

    assert result.code == 3
    assert "ERROR: No host with name or id 'nope'." in result.err


def test_unreachable_server_is_an_error(capsys) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    code = main(
        ["--craton-url", "http://127.0.0.1:1", "runner-list"], transport=httpx.MockTransport(refuse)
    )

    err = capsys.readouterr().err
    assert code == 3
    assert err.startswith("ERROR: Cannot reach the craton server at http://127.0.0.1:1")


def test_usage_errors_exit_2(cli) -> None:
    result = cli("host-create", "--name", "h")

    assert result.code == 2
    # Craton's CLI's spellings of each option follow ours (-i, --ip_address, -r).
    assert "ERROR: the following arguments are required: --ip-address/" in result.err
    assert ", --region/-r" in result.err


def test_an_unknown_command_suggests_the_closest(cli) -> None:
    result = cli("hots-list")

    assert result.code == 2
    assert result.err.splitlines()[-1].startswith(
        "ERROR: unknown command 'hots-list'; did you mean host-list"
    )


def test_help_lists_the_exit_statuses(cli) -> None:
    result = cli("--help")

    assert result.code == 0
    text = " ".join(result.out.split())
    assert (
        "Exit status: 0 success; 1 a build or job waited for failed or was cancelled; 2 usage error"
        in text
    )
    assert "3 the server refused the request" in text


def test_auth_errors_name_the_settings_not_the_http_headers(router, cli) -> None:
    required = "Authentication is required: send X-Auth-User and X-Auth-Token, or a bearer token."
    router.add("GET", "/v1/hosts", router.error(401, required, "authentication_failed"))
    router.add("GET", "/v1/tasks", router.error(401, "invalid or expired token"))

    missing = cli("host-list")
    expired = cli("task-list")

    assert missing.code == expired.code == 3
    assert missing.err == ("ERROR: Authentication is required: set OS_USERNAME and OS_PASSWORD.\n")
    assert expired.err == (
        "ERROR: invalid or expired token (check OS_USERNAME and OS_PASSWORD, "
        "or --os-username and --os-password)\n"
    )


def test_a_mistyped_directory_is_no_such_directory_not_a_git_url(router, cli, tmp_path) -> None:
    router.add("POST", "/v1/tasks", TASK)
    typo = str(tmp_path / "pach")
    relative = "examples/runbook/pach"

    results = [
        cli("task-create", "--name", "p", "--location", where, "--command", "x")
        for where in (typo, relative)
    ]

    for where, result in zip((typo, relative), results, strict=True):
        assert result.code == 2
        assert result.err == f"ERROR: No such directory: {where}\n"
    assert router.requests == []
    scp = cli(
        "task-create", "--name", "p", "--location", "git@git.example:ops/p.git", "--command", "x"
    )
    assert scp.code == 0, scp.err
    assert json.loads(router.sent("POST", "/v1/tasks")[0].content)["location"] == (
        "git@git.example:ops/p.git"
    )


def test_missing_workflow_file_is_an_error(cli, tmp_path: Path) -> None:
    result = cli("workflow-create", "--name", "w", "--file", str(tmp_path / "nope.yaml"))

    assert result.code == 2
    assert result.err.startswith("ERROR: Cannot read ")
    assert "nope.yaml" in result.err


# -- show and list formatting ------------------------------------------------------------


def test_show_prints_a_property_value_table(router, cli) -> None:
    router.add("GET", "/v1/hosts/3", HOST)

    result = cli("host-show", "3")

    assert result.code == 0
    lines = result.out.splitlines()
    assert "Property" in lines[1] and "Value" in lines[1]
    row = next(line for line in lines if " ip_address " in line)
    assert "10.0.0.3" in row
    assert '{"hw": {"vendor": "dell"}}' in result.out
    assert '["compute"]' in result.out


def test_format_json_prints_the_raw_object(router, cli) -> None:
    router.add("GET", "/v1/hosts/3", HOST)

    result = cli("--format", "json", "host-show", "3")

    assert result.json() == HOST


def test_format_is_accepted_after_the_command(router, cli) -> None:
    router.add("GET", "/v1/hosts/3", HOST)

    result = cli("host-show", "3", "--format", "yaml")

    assert yaml.safe_load(result.out) == HOST


def test_list_shows_default_columns(router, cli) -> None:
    router.collection("/v1/hosts", "hosts", [host(1), host(2)])

    result = cli("host-list")

    header = result.out.splitlines()[1]
    assert [c.strip() for c in header.strip("|").split("|")] == [
        "id",
        "name",
        "ip_address",
        "device_type",
        "region_id",
        "cell_id",
        "labels",
        "active",
    ]
    assert "compute-2" in result.out


def test_fields_choose_the_columns_space_or_comma_separated(router, cli) -> None:
    router.collection("/v1/hosts", "hosts", [host(1), host(2)])

    table = cli("host-list", "--fields", "name", "ip_address")
    as_json = cli("host-list", "--fields", "id,name", "--format", "json")

    header = table.out.splitlines()[1]
    assert [c.strip() for c in header.strip("|").split("|")] == ["name", "ip_address"]
    assert as_json.json() == [{"id": 1, "name": "compute-1"}, {"id": 2, "name": "compute-2"}]


def test_unknown_field_is_an_error(router, cli) -> None:
    router.collection("/v1/hosts", "hosts", [host(1)])

    result = cli("host-list", "--fields", "name", "colour")

    assert result.code == 2
    assert "ERROR: Unknown field(s): colour." in result.err


def test_list_without_all_shows_one_page_and_says_there_is_more(router, cli) -> None:
    router.collection("/v1/clouds", "clouds", [{"id": i, "name": f"c{i}"} for i in range(1, 6)], 2)

    first = cli("cloud-list", "--format", "json")
    everything = cli("cloud-list", "--all", "--format", "json")
    limited = cli("cloud-list", "--limit", "3", "--format", "json")
    after = cli("cloud-list", "--marker", "4", "--format", "json")

    assert [c["id"] for c in first.json()] == [1, 2]
    assert "--marker 2" in first.err
    assert [c["id"] for c in everything.json()] == [1, 2, 3, 4, 5]
    assert everything.err == ""
    assert [c["id"] for c in limited.json()] == [1, 2, 3]
    assert [c["id"] for c in after.json()] == [5]


def test_list_sorting_and_host_filters_reach_the_server(router, cli) -> None:
    router.collection("/v1/hosts", "hosts", [])

    cli(
        "host-list",
        "--region", "r1",
        "--cell", "7",
        "--label", "compute", "rack-1",
        "--vars", "hw.vendor:dell",
        "--sort-key", "name",
        "--sort-dir", "desc",
    )  # fmt: skip

    params = router.sent("GET", "/v1/hosts")[0].url.params
    assert params["region"] == "r1" and params["cell_id"] == "7"
    assert params.get_list("label") == ["compute", "rack-1"]
    assert params["vars"] == "hw.vendor:dell"
    assert (params["sort_keys"], params["sort_dir"]) == ("name", "desc")


# -- inventory -----------------------------------------------------------------------------


def test_host_create_resolves_names_and_sends_labels_and_vars(router, cli) -> None:
    router.collection("/v1/regions", "regions", [{"id": 1, "name": "r1"}])
    router.collection("/v1/cells", "cells", [{"id": 4, "name": "c1"}])
    router.add(
        "POST", "/v1/hosts", lambda request: httpx.Response(201, json=json.loads(request.content))
    )

    result = cli(
        "host-create",
        "--name", "compute-9",
        "--ip-address", "10.0.0.9",
        "--region", "r1",
        "--cell", "c1",
        "--label", "compute",
        "--label", "rack-1",
        "--var", "rack=1",
        "--var", "owner=ops",
    )  # fmt: skip

    assert result.code == 0, result.err
    assert json.loads(router.sent("POST", "/v1/hosts")[0].content) == {
        "name": "compute-9",
        "ip_address": "10.0.0.9",
        "region_id": 1,
        "cell_id": 4,
        "labels": ["compute", "rack-1"],
        "variables": {"rack": 1, "owner": "ops"},
    }


def test_vars_set_parses_values_as_json_when_it_can(router, cli) -> None:
    router.collection("/v1/hosts", "hosts", [host(3)])
    router.add(
        "PUT",
        "/v1/hosts/3/variables",
        lambda r: httpx.Response(200, json={"variables": json.loads(r.content)}),
    )

    result = cli(
        "host-vars-set", "compute-3", "n=3", "on=true", "s=text", "l=[1,2]", 'd={"a":1}', "e="
    )  # fmt: skip

    assert result.code == 0, result.err
    assert json.loads(router.sent("PUT", "/v1/hosts/3/variables")[0].content) == {
        "n": 3,
        "on": True,
        "s": "text",
        "l": [1, 2],
        "d": {"a": 1},
        "e": "",
    }
    assert "Variable" in result.out


def test_vars_set_rejects_a_pair_without_equals(cli) -> None:
    result = cli("host-vars-set", "3", "novalue")

    assert result.code == 2
    assert "ERROR: Bad variable 'novalue': expected KEY=VALUE." in result.err


def test_vars_get_and_delete(router, cli) -> None:
    router.add("GET", "/v1/regions/1/variables", {"variables": {"ntp": "10.0.0.1"}})
    router.add("DELETE", "/v1/regions/1/variables", httpx.Response(204))

    shown = cli("region-vars-get", "1", "--no-resolved", "--format", "json")
    deleted = cli("region-vars-delete", "1", "ntp", "dns")

    assert shown.json() == {"ntp": "10.0.0.1"}
    assert router.sent("GET", "/v1/regions/1/variables")[0].url.params["resolved-values"] == "false"
    assert deleted.code == 0
    assert json.loads(router.sent("DELETE", "/v1/regions/1/variables")[0].content) == ["ntp", "dns"]


# -- tasks ------------------------------------------------------------------------------------


TASK = {
    "id": 5,
    "name": "hello",
    "source_type": "upload",
    "location": "/somewhere",
    "status": "BUILD PENDING",
    "current_build": {"id": 11, "number": 1, "status": "BUILD PENDING"},
}


def test_a_ready_task_awaiting_approval_does_not_read_as_runnable(router, cli) -> None:
    pending = {"status": "pending", "build": 1, "digest": "sha256:ab", "by": None, "at": None}
    approved = {**pending, "status": "approved", "by": "alice"}
    router.collection(
        "/v1/tasks",
        "tasks",
        [
            {**TASK, "status": "READY", "approval": pending},
            {**TASK, "id": 6, "name": "audit", "status": "READY", "approval": approved},
        ],
    )

    listed = cli("task-list")
    shown = cli("task-show", "hello")
    as_json = cli("task-list", "--format", "json")

    assert listed.code == shown.code == as_json.code == 0, listed.err + shown.err
    rows = {line.split("|")[2].strip(): line for line in listed.out.splitlines() if "|" in line}
    assert "READY (awaiting approval)" in rows["hello"]
    assert "| pending (build 1)" in rows["hello"]
    assert "| READY " in rows["audit"] and "approved by alice (build 1)" in rows["audit"]
    assert "READY (awaiting approval)" in shown.out
    assert json.loads(as_json.out)[0]["status"] == "READY"  # scripts get the fields as they are


def test_task_create_from_a_directory_uploads_it(router, cli, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox\n")
    router.add("POST", "/v1/tasks", TASK)

    result = cli(
        "task-create", "--name", "hello", "--location", str(tmp_path),
        "--command", "sh -c 'echo \"hi there\"'", "--kind", "audit", "--public",
    )  # fmt: skip

    assert result.code == 0, result.err
    request = router.sent("POST", "/v1/tasks")[0]
    assert request.headers["content-type"].startswith("multipart/form-data")
    assert b'"command": ["sh", "-c", "echo \\"hi there\\""]' in request.content
    assert b'"public": true' in request.content


def test_task_create_from_git_sends_json(router, cli) -> None:
    router.add("POST", "/v1/tasks", {**TASK, "source_type": "git"})

    result = cli(
        "task-create", "--name", "hello", "--location", "https://git.example/hello.git",
        "--ref", "main", "--command", "/run.sh --verbose",
    )  # fmt: skip

    assert result.code == 0, result.err
    assert json.loads(router.sent("POST", "/v1/tasks")[0].content) == {
        "name": "hello",
        "location": "https://git.example/hello.git",
        "ref": "main",
        "command": ["/run.sh", "--verbose"],
    }


def test_task_create_wait_failure_prints_the_log_tail_and_exits_1(router, cli, tmp_path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM nothing\n")
    router.add("POST", "/v1/tasks", TASK)
    router.add(
        "GET",
        "/v1/tasks/5/builds/11/logs",
        router.ndjson(
            [{"seq": 1, "line": "Step 1/1 : FROM nothing"}, {"seq": 2, "line": "no such image"}]
        ),
    )
    router.add(
        "GET",
        "/v1/tasks/5/builds/11",
        {"id": 11, "number": 1, "status": "BUILD FAILED", "error": "docker build failed"},
    )
    router.add("GET", "/v1/tasks/5", {**TASK, "status": "BUILD FAILED"})

    result = cli(
        "task-create", "--name", "hello", "--location", str(tmp_path), "--command", "x", "--wait"
    )

    assert result.code == 1
    assert "no such image" in result.err
    assert result.err.rstrip().endswith("ERROR: Build of task hello failed: docker build failed")
    assert "BUILD FAILED" in result.out


def test_task_build_wait_success(router, cli) -> None:
    git_task = {**TASK, "source_type": "git", "location": "https://git.example/x.git"}
    router.collection("/v1/tasks", "tasks", [git_task])
    router.add("POST", "/v1/tasks/5/builds", {"id": 12, "number": 2, "status": "BUILD PENDING"})
    router.add("GET", "/v1/tasks/5/builds/12/logs", router.ndjson([{"seq": 1, "line": "built"}]))
    router.add("GET", "/v1/tasks/5/builds/12", {"id": 12, "number": 2, "status": "READY"})
    router.add("GET", "/v1/tasks/5", {**git_task, "status": "READY"})

    result = cli("task-build", "hello", "--ref", "v2", "--wait", "--verbose")

    assert result.code == 0, result.err
    assert json.loads(router.sent("POST", "/v1/tasks/5/builds")[0].content) == {"ref": "v2"}
    assert "built" in result.err.splitlines()  # --verbose: every line of the log
    assert "READY" in result.out


def test_task_create_wait_shows_the_steps_not_the_whole_log(router, cli, tmp_path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM base\n")
    router.add("POST", "/v1/tasks", TASK)
    log = [
        "Step 1/2 : FROM craton/busybox:latest",
        " ---> 1f4044cb54f3",
        "Step 2/2 : RUN make",
        " ---> Running in aa72f5351430",
        "Removing intermediate container aa72f5351430",
        "Successfully built c7b44fa5ce56",
    ]
    router.add(
        "GET",
        "/v1/tasks/5/builds/11/logs",
        router.ndjson([{"seq": i, "line": line} for i, line in enumerate(log, 1)]),
    )
    router.add("GET", "/v1/tasks/5/builds/11", {"id": 11, "number": 1, "status": "READY"})
    router.add("GET", "/v1/tasks/5", {**TASK, "status": "READY"})

    result = cli(
        "task-create", "--name", "hello", "--location", str(tmp_path), "--command", "x", "--wait"
    )

    assert result.code == 0, result.err
    assert "task hello: step 1/2 FROM craton/busybox:latest, 00:00:0" in result.err
    assert "step 2/2 RUN make" in result.err
    assert "intermediate container" not in result.err
    assert "task hello: build 1 READY (00:00:0" in result.err


def test_task_build_of_an_upload_task_repacks_its_location(router, cli, tmp_path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox\n")
    router.add("GET", "/v1/tasks/5", {**TASK, "location": str(tmp_path)})
    router.add("POST", "/v1/tasks/5/builds", {"id": 12, "number": 2, "status": "BUILD PENDING"})

    result = cli("task-build", "5")

    assert result.code == 0, result.err
    request = router.sent("POST", "/v1/tasks/5/builds")[0]
    assert request.headers["content-type"].startswith("multipart/form-data")


# -- workflows and jobs -----------------------------------------------------------------------


def test_workflow_create_from_a_file(router, cli, tmp_path: Path) -> None:
    definition = tmp_path / "wf.yaml"
    definition.write_text(
        "name: from-file\n"
        "description: d\n"
        "steps:\n"
        "  - task: drain\n"
        "  - task: patch\n"
        "    retries: 2\n"
    )
    router.add(
        "POST",
        "/v1/workflows",
        lambda r: httpx.Response(
            201,
            json={
                "id": 1,
                "version": 1,
                **json.loads(r.content),
                # the server names each step and its task
                "steps": [
                    {"name": s["task"], "task_name": s["task"], **s}
                    for s in json.loads(r.content)["steps"]
                ],
            },
        ),
    )

    result = cli("workflow-create", "--name", "maint", "--file", str(definition))

    assert result.code == 0, result.err
    body = json.loads(router.sent("POST", "/v1/workflows")[0].content)
    assert body == {
        "name": "maint",
        "description": "d",
        "steps": [{"task": "drain"}, {"task": "patch", "retries": 2}],
    }
    assert "drain" in result.out and "patch" in result.out


def test_workflow_create_from_tasks(router, cli) -> None:
    router.add(
        "POST",
        "/v1/workflows",
        lambda r: httpx.Response(201, json={"id": 1, **json.loads(r.content)}),
    )

    cli("workflow-create", "--name", "w", "--task", "drain", "--task", "7")

    body = json.loads(router.sent("POST", "/v1/workflows")[0].content)
    assert body["steps"] == [{"task": "drain"}, {"task": "7"}]


JOB = {
    "id": 7,
    "name": "j",
    "status": "PENDING",
    "message": None,
    "summary": {"hosts": {"PENDING": 2}},
}


def test_job_create_sends_targets_filters_and_variables(router, cli) -> None:
    router.add("POST", "/v1/jobs", JOB)
    router.add("GET", "/v1/jobs/7/hosts", {"hosts": []})

    result = cli(
        "job-create", "--workflow", "maint", "--host", "compute-1", "3",
        "--label", "compute", "--vars", "hw.vendor:dell", "--var", "ticket=OPS-1",
        "--concurrency", "5", "--max-failures", "1",
    )  # fmt: skip

    assert result.code == 0, result.err
    assert json.loads(router.sent("POST", "/v1/jobs")[0].content) == {
        "workflow": "maint",
        "hosts": ["compute-1", "3"],
        "filters": {"label": ["compute"], "vars": ["hw.vendor:dell"]},
        "variables": {"ticket": "OPS-1"},
        "concurrency": 5,
        "max_failures": 1,
    }


def test_job_create_needs_a_target(cli) -> None:
    result = cli("job-create", "--task", "audit")

    assert result.code == 2
    assert result.err.startswith("ERROR: No target")


@pytest.mark.parametrize(("final", "code"), [("SUCCEEDED", 0), ("FAILED", 1)])
def test_job_create_wait_exits_by_the_jobs_outcome(router, cli, final: str, code: int) -> None:
    states = iter(["RUNNING", final])
    router.add("POST", "/v1/jobs", JOB)
    router.add(
        "GET",
        "/v1/jobs/7",
        lambda r: httpx.Response(
            200, json={**JOB, "status": next(states), "summary": {"hosts": {final: 2}}}
        ),
    )
    router.add(
        "GET", "/v1/jobs/7/hosts", {"hosts": [{"host_id": 1, "host_name": "a", "status": final}]}
    )
    router.add("GET", "/v1/jobs/7/runs", {"runs": []})

    result = cli("job-create", "--task", "audit", "--host", "a", "--wait")

    assert result.code == code
    assert result.err.startswith("Job 7 PENDING.\n")  # the job's id first
    assert f"job 7 {final}: hosts 2 {final}" in result.err
    assert "Hosts" in result.out
    if code:
        assert "ERROR: Job 7 FAILED" in result.err


def test_job_show_has_a_table_per_host(router, cli) -> None:
    router.add("GET", "/v1/jobs/7", {**JOB, "status": "RUNNING"})
    router.add(
        "GET",
        "/v1/jobs/7/hosts",
        {
            "hosts": [
                {"host_id": 1, "host_name": "compute-1", "status": "SUCCEEDED", "failed_step": None}
            ]
        },
    )

    result = cli("job-show", "7")

    assert "Property" in result.out and "RUNNING" in result.out
    assert "host_name" in result.out and "compute-1" in result.out


def test_job_logs_prints_host_and_step_and_marks_stderr(router, cli) -> None:
    router.add(
        "GET",
        "/v1/jobs/7/logs",
        router.sse(
            [
                {
                    "id": 1,
                    "host_name": "compute-1",
                    "step_name": "patch",
                    "stream": "stdout",
                    "line": "[ok] done",
                },
                {
                    "id": 2,
                    "host_name": "compute-1",
                    "step_name": "patch",
                    "stream": "stderr",
                    "line": "warn",
                },
            ],
            end={"job_status": "SUCCEEDED"},
        ),
    )
    router.add("GET", "/v1/jobs/7", {**JOB, "status": "SUCCEEDED"})

    result = cli("job-logs", "7", "--follow")

    assert result.code == 0, result.err
    assert result.out == "[compute-1 patch] [ok] done\n[compute-1 patch stderr] warn\n"


def test_runner_list(router, cli) -> None:
    router.collection(
        "/v1/runners",
        "runners",
        [
            {
                "id": 1,
                "name": "r",
                "hostname": "h",
                "executor": "docker",
                "alive": True,
                "heartbeat_at": "now",
            }
        ],
    )

    result = cli("runner-list", "--format", "json")

    assert result.json()[0]["executor"] == "docker"


def test_global_options_fall_back_to_the_environment() -> None:
    environ = {
        "CRATON_URL": "http://craton:7780",
        "OS_PROJECT_ID": "p",
        "OS_USERNAME": "u",
        "OS_PASSWORD": "t",
    }

    args = build_parser(environ).parse_args(["runner-list"])
    default = build_parser({}).parse_args(["runner-list"])

    assert (args.craton_url, args.os_project_id, args.os_username, args.os_password) == (
        "http://craton:7780",
        "p",
        "u",
        "t",
    )
    assert default.craton_url == "http://127.0.0.1:7780"
    assert default.format == "table"


def test_following_the_logs_of_a_job_that_fails_exits_1(router, cli) -> None:
    line = {"id": 1, "host_name": "a", "step_name": "s", "stream": "stderr", "line": "boom"}
    router.add("GET", "/v1/jobs/7/logs", router.sse([line], end={"job_status": "FAILED"}))
    router.add("GET", "/v1/jobs/7", {**JOB, "status": "FAILED", "message": "1 host failed"})

    result = cli("job-logs", "7", "--follow")

    assert result.code == 1
    assert result.out == "[a s stderr] boom\n"
    assert "Job 7 FAILED: 1 host failed" in result.err


def test_a_cut_follow_stream_is_opened_again_after_the_last_line(router, cli) -> None:
    line = {"host_name": "a", "step_name": "s", "stream": "stdout"}
    lines = [{**line, "id": n, "line": f"l{n}"} for n in (3, 8, 9)]

    def logs(request: httpx.Request) -> httpx.Response:
        assert request.url.params["follow"] == "true"
        assert "text/event-stream" in request.headers["accept"]
        resume = int(request.headers.get("last-event-id", "0"))
        after = [x for x in lines if x["id"] > resume]
        if resume == 0:  # the first stream is cut after one line, no end
            return router.sse(after[:1])
        return router.sse(after, end={"job_status": "SUCCEEDED"})

    router.add("GET", "/v1/jobs/7/logs", logs)
    router.add("GET", "/v1/jobs/7", {**JOB, "status": "SUCCEEDED"})

    result = cli("job-logs", "7", "--follow")

    assert result.code == 0, result.err
    assert result.out == "[a s] l3\n[a s] l8\n[a s] l9\n"
    sent = router.sent("GET", "/v1/jobs/7/logs")
    assert [r.headers.get("last-event-id") for r in sent] == [None, "3"]
    assert sent[1].url.params["after"] == "3"


def test_a_stream_that_keeps_failing_ends_in_an_error_after_the_reconnect_time(
    router, cli, monkeypatch
) -> None:
    monkeypatch.setattr(_watch, "RECONNECT_SECONDS", 0.0)
    waits: list[float] = []
    monkeypatch.setattr(_watch.time, "sleep", waits.append)

    def logs(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    router.add("GET", "/v1/jobs/7/logs", logs)

    result = cli("job-logs", "7", "--follow")

    assert result.code == 3  # the server could not be reached (craton --help's exit statuses)
    assert result.err.splitlines()[-1].startswith("ERROR: Cannot reach the craton server")
    assert len(router.sent("GET", "/v1/jobs/7/logs")) == 2


def test_reconnecting_waits_longer_each_time_up_to_a_bound(monkeypatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr(_watch, "POLL_INTERVAL", 1.0)
    monkeypatch.setattr(_watch.time, "sleep", waits.append)
    notes: list[str] = []
    ctx = types.SimpleNamespace(out=types.SimpleNamespace(note=notes.append))
    retry = _watch.Reconnecting(ctx)  # type: ignore[arg-type]
    for _ in range(7):
        retry.lost(cratonclient.ConnectionFailed("gone"))
    retry.back()
    retry.lost(cratonclient.ConnectionFailed("gone again"))

    assert waits == [0.5, 1, 2, 4, 8, 8, 8, 0.5]
    assert notes[:2] == [
        "Lost the server (gone); reconnecting for up to 300 s...",
        "Reconnected.",
    ]


def test_the_client_never_imports_the_server() -> None:
    code = (
        "import sys, cratonclient, cratonclient.shell.main; "
        "sys.exit(any(m.split('.')[0] == 'craton_wf' for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_job_list_names_the_workflow_the_launcher_the_hosts_and_the_duration(router, cli) -> None:
    finished = {
        **JOB,
        "status": "FAILED",
        "workflow_id": 2,
        "workflow_version": 3,
        "workflow_name": "host-maintenance",
        "task_id": None,
        "created_by": 4,
        "created_by_name": "alice",
        "created_at": "2026-12-04T10:00:00Z",
        "started_at": "2026-12-04T10:00:05Z",
        "finished_at": "2026-12-04T10:12:08Z",
        "summary": {"hosts": {"SUCCEEDED": 2, "FAILED": 1}},
    }
    router.collection("/v1/jobs", "jobs", [finished])

    table = cli("job-list")
    as_json = cli("job-list", "--format", "json")

    assert table.code == 0, table.err
    header, row = [line for line in table.out.splitlines() if line.startswith("| ")][:2]
    cells = dict(zip(header.split("|"), row.split("|"), strict=True))
    cells = {k.strip(): v.strip() for k, v in cells.items()}
    assert cells["workflow"] == "host-maintenance v3"
    assert cells["created_by"] == "alice"
    assert cells["hosts"] == "2/3 SUCCEEDED, 1 FAILED"
    assert cells["duration"] == "00:12:03"
    assert json.loads(as_json.out)[0]["workflow_name"] == "host-maintenance"


def test_job_events_name_the_host(router, cli) -> None:
    router.add(
        "GET",
        "/v1/jobs/7/events",
        {
            "events": [
                {"id": 1, "kind": "job_created", "message": "", "run_id": None, "host_name": None},
                {
                    "id": 2,
                    "kind": "run_failed",
                    "message": "exit 2",
                    "run_id": 9,
                    "host_name": "web-3",
                },
            ],
            "links": [],
        },
    )

    result = cli("job-events", "7")

    assert result.code == 0, result.err
    assert "host_name" in result.out
    assert [line for line in result.out.splitlines() if "run_failed" in line][0].count("web-3") == 1


def test_job_cancel_of_a_finished_job_says_it_already_finished(router, cli) -> None:
    router.add("GET", "/v1/jobs/7", {**JOB, "status": "SUCCEEDED"})
    router.add("GET", "/v1/jobs/7/hosts", {"hosts": []})

    result = cli("job-cancel", "7")

    assert result.code == 0, result.err
    assert result.err == "Job 7 already finished (SUCCEEDED): nothing to cancel.\n"
    assert router.sent("POST", "/v1/jobs/7/cancel") == []


def test_wait_shows_the_step_each_running_host_is_at(router, cli) -> None:
    steps = [{"name": name} for name in ("drain", "patch", "reboot")]
    running = {**JOB, "status": "RUNNING", "steps": steps, "started_at": "2026-12-04T10:00:00Z"}
    states = iter([{**running, "summary": {"hosts": {"SUCCEEDED": 1, "RUNNING": 1, "PENDING": 1}}}])
    router.add("POST", "/v1/jobs", {**JOB, "steps": steps})
    router.add(
        "GET",
        "/v1/jobs/7",
        lambda r: httpx.Response(
            200,
            json=next(
                states, {**running, "status": "SUCCEEDED", "summary": {"hosts": {"SUCCEEDED": 3}}}
            ),
        ),
    )
    runs = [
        {
            "id": 1,
            "job_host_id": 11,
            "host_name": "web-1",
            "step_index": 2,
            "step_name": "reboot",
            "status": "SUCCEEDED",
        },
        {
            "id": 2,
            "job_host_id": 12,
            "host_name": "web-2",
            "step_index": 1,
            "step_name": "patch",
            "status": "RUNNING",
        },
        {
            "id": 3,
            "job_host_id": 13,
            "host_name": "web-3",
            "step_index": 0,
            "step_name": "drain",
            "status": "PENDING",
        },
    ]
    router.add("GET", "/v1/jobs/7/runs", {"runs": runs})
    router.add("GET", "/v1/jobs/7/hosts", {"hosts": []})

    result = cli("job-create", "--task", "audit", "--host", "a", "--wait")

    assert result.code == 0, result.err
    line = [line for line in result.err.splitlines() if "RUNNING" in line][0]
    assert "host 2/3 web-2, step 2/3 patch, " in line
    assert re.search(r", \d\d:\d\d:\d\d$", line)  # time since the job started


def test_follow_reconnects_when_the_server_restarts(router, cli) -> None:
    calls = {"logs": 0}
    line = {"host_name": "a", "step_name": "s", "stream": "stdout"}

    def logs(request: httpx.Request) -> httpx.Response:
        calls["logs"] += 1
        if calls["logs"] == 1:
            return router.ndjson([{**line, "id": 1, "line": "before"}])
        if calls["logs"] <= 3:  # the server is restarting
            raise httpx.ConnectError("Connection refused", request=request)
        after = int(request.url.params["after"])
        chunk = [{**line, "id": 2, "line": "after"}] if after < 2 else []
        return httpx.Response(200, json={"logs": chunk, "next_after": 2, "job_status": "SUCCEEDED"})

    states = iter(["RUNNING"])
    router.add("POST", "/v1/jobs", JOB)
    router.add("GET", "/v1/jobs/7/logs", logs)
    router.add(
        "GET",
        "/v1/jobs/7",
        lambda r: httpx.Response(200, json={**JOB, "status": next(states, "SUCCEEDED")}),
    )
    router.add("GET", "/v1/jobs/7/hosts", {"hosts": []})

    result = cli("job-create", "--task", "audit", "--host", "a", "--follow")

    assert result.code == 0, result.err
    assert result.out.splitlines()[:2] == ["[a s] before", "[a s] after"]
    assert "Lost the server (Cannot reach the craton server" in result.err
    assert "Reconnected." in result.err


def test_ctrl_c_while_following_says_the_job_keeps_running(router, cli, monkeypatch) -> None:
    router.add("POST", "/v1/jobs", JOB)

    def interrupted(request: httpx.Request) -> httpx.Response:
        raise KeyboardInterrupt

    router.add("GET", "/v1/jobs/7/logs", interrupted)

    result = cli("job-create", "--task", "audit", "--host", "a", "--follow")

    assert result.code == 130
    assert result.err.splitlines() == [
        "Job 7 PENDING.",
        "Stopped watching: job 7 keeps running. Follow it with 'craton job-logs 7 --follow', "
        "cancel it with 'craton job-cancel 7'.",
    ]


def test_ctrl_c_in_job_logs_follow_says_the_job_keeps_running(router, cli) -> None:
    def interrupted(request: httpx.Request) -> httpx.Response:
        raise KeyboardInterrupt

    router.add("GET", "/v1/jobs/7/logs", interrupted)

    result = cli("job-logs", "7", "--follow")

    assert result.code == 130
    assert result.err.startswith("Stopped watching: job 7 keeps running.")
