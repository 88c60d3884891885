"""The swarm service spec on its own: hardening that depends on the engine's API."""

from __future__ import annotations

from craton_wf.executors.base import ContainerSpec
from craton_wf.executors.swarm import service_spec

SPEC = ContainerSpec(name="craton-run-1-1-abc", image="busybox", command=["true"])


def test_no_new_privileges_is_set_where_the_engine_carries_it() -> None:
    template = service_spec(SPEC, None, 2, no_new_privileges=True)
    assert template["ContainerSpec"]["Privileges"] == {"NoNewPrivileges": True}


def test_an_older_engine_gets_no_field_it_would_reject() -> None:
    template = service_spec(SPEC, None, 2)
    assert "Privileges" not in template["ContainerSpec"]
    assert template["ContainerSpec"]["CapabilityDrop"] == ["ALL"]
    assert template["ContainerSpec"]["ReadOnly"] is True


def test_the_task_runs_under_an_init_that_forwards_sigterm() -> None:
    assert service_spec(SPEC, None, 2)["ContainerSpec"]["Init"] is True


def test_the_task_logs_to_json_file_with_the_platforms_rotation() -> None:
    template = service_spec(SPEC, None, 2, log_max_size="1m", log_max_files=3)
    assert template["LogDriver"] == {
        "Name": "json-file",
        "Options": {"max-size": "1m", "max-file": "3"},
    }
