"""Pure domain rules: the job graph, variable resolution, state machines, outputs."""

from __future__ import annotations

import pytest

from craton_wf.domain.graph import name_steps, plan_runs, validate_steps
from craton_wf.domain.outputs import parse_output_line
from craton_wf.domain.states import JobStatus, RunStatus, check_transition
from craton_wf.domain.variables import matches_vars, parse_vars_filter, resolve_variables
from craton_wf.errors import Conflict, InvalidInput


def steps(*specs: dict) -> list[dict]:
    return name_steps([{"task": "t", **spec} for spec in specs])


def test_sequence_plan_is_per_host_chain():
    plan = plan_runs(steps({"name": "a"}, {"name": "b"}), host_count=2)
    assert [(p.key, p.depends_on) for p in plan] == [
        (("a", 0), ()),
        (("b", 0), (("a", 0),)),
        (("a", 1), ()),
        (("b", 1), (("a", 1),)),
    ]


def test_once_step_waits_for_every_host_and_hosts_wait_for_it():
    plan = plan_runs(
        steps(
            {"name": "drain", "once": True},
            {"name": "patch", "depends_on": ["drain"]},
            {"name": "report", "once": True, "depends_on": ["patch"]},
        ),
        2,
    )
    by_key = {p.key: p.depends_on for p in plan}
    assert by_key[("patch", 0)] == (("drain", None),)
    assert by_key[("report", None)] == (("patch", 0), ("patch", 1))


def test_step_names_default_to_task_names_and_stay_unique():
    named = name_steps([{"task": "x"}, {"task": "x"}, {"task": "y", "name": "custom"}])
    assert [s["name"] for s in named] == ["x", "x-2", "custom"]


@pytest.mark.parametrize(
    "bad, message",
    [
        ([], "at least one step"),
        ([{"name": "a", "depends_on": ["zz"]}], "unknown step"),
        ([{"name": "a", "depends_on": ["b"]}, {"name": "b", "depends_on": ["a"]}], "cycle"),
        ([{"name": "a"}, {"name": "a"}], "duplicate"),
        ([{"name": "bad name"}], "invalid step name"),
    ],
)
def test_invalid_graphs(bad, message):
    with pytest.raises(InvalidInput, match=message):
        validate_steps(bad)


def test_resolution_first_scope_wins():
    assert resolve_variables([{"a": 1}, None, {"a": 2, "b": 2}, {"c": 3}]) == {
        "a": 1,
        "b": 2,
        "c": 3,
    }


def test_vars_filter():
    variables = {"os": {"name": "debian", "ver": 12}, "tags": ["a", "b"]}
    assert matches_vars(variables, [parse_vars_filter("os.ver:12")])
    assert matches_vars(variables, [parse_vars_filter("os.name:debian")])
    assert matches_vars(variables, [parse_vars_filter("tags.1:b")])
    assert not matches_vars(variables, [parse_vars_filter("os.ver:11")])
    assert not matches_vars(variables, [parse_vars_filter("missing:1")])
    with pytest.raises(InvalidInput):
        parse_vars_filter("novalue")


def test_state_machine_refuses_illegal_moves():
    check_transition(RunStatus.QUEUED, RunStatus.STARTING)
    with pytest.raises(Conflict):
        check_transition(RunStatus.SUCCEEDED, RunStatus.RUNNING)
    with pytest.raises(Conflict):
        check_transition(JobStatus.CANCELLED, JobStatus.RUNNING)


def test_output_marker():
    assert parse_output_line('::craton-output:: {"a": 1}') == {"a": 1}
    assert parse_output_line("::craton-output:: [1]") is None
    assert parse_output_line("plain line") is None


def test_api_tokens_are_redacted_by_their_form_without_being_named() -> None:
    import secrets

    from craton_wf.domain.redaction import TOKEN_PREFIX, redact

    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    assert redact(f"CRATON_TOKEN={token}", ()) == "CRATON_TOKEN=[redacted]"
    assert redact(f"Bearer {token[:24]}.", ()) == "Bearer [redacted]."  # a token cut short
    assert redact(f"{token} and hunter2-value", ["hunter2-value"]) == "[redacted] and [redacted]"
    assert redact("cwf_short and cwf_ alone", ()) == "cwf_short and cwf_ alone"
