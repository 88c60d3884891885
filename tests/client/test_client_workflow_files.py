"""Workflow files are read with guards: no YAML alias bomb, no huge file, nothing sent."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from cratonclient.shell import _workflows

# "Billion laughs": nine levels of nine aliases, 9**9 nodes once expanded.
LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n"
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (LAUGHS + "steps: [{task: t, args: {x: *i}}]\n", "expands to more than 100000 nodes"),
        ("steps: &s [{task: t, args: {again: *s}}]\n", "alias refers to itself"),
        (
            "x: &x {a: 1}\nsteps:\n" + "".join("  - {task: t, args: *x}\n" for _ in range(101)),
            "more than 100 YAML aliases",
        ),
        ("[" * 5000 + "]" * 5000, "nested too deeply"),
    ],
    ids=["billion-laughs", "recursive", "too-many-aliases", "deep"],
)
def test_a_hostile_workflow_file_is_an_error_and_nothing_is_sent(
    router, cli, tmp_path: Path, text: str, words: str
) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(text)

    result = cli("workflow-create", "--name", "w", "--file", str(path))

    assert result.code == 2
    assert result.err.startswith("ERROR: ") and words in result.err, result.err
    assert router.requests == []


def test_a_huge_workflow_file_is_refused_before_it_is_parsed(router, cli, tmp_path: Path) -> None:
    path = tmp_path / "wf.json"
    path.write_text(json.dumps({"steps": [{"task": "t", "args": {"x": "y" * (2 * 1024 * 1024)}}]}))

    result = cli("workflow-create", "--name", "w", "--file", str(path))

    assert result.code == 2 and "larger than 1048576 bytes" in result.err
    assert router.requests == []


def test_a_few_anchors_for_shared_arguments_still_work(router, cli, tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(
        "steps:\n"
        "  - {task: drain, args: &common {region: dc1, dry_run: false}}\n"
        "  - {task: patch, args: *common}\n"
    )
    router.add(
        "POST",
        "/v1/workflows",
        lambda r: httpx.Response(201, json={"id": 1, **json.loads(r.content)}),
    )

    result = cli("--format", "json", "workflow-create", "--name", "w", "--file", str(path))

    assert result.code == 0, result.err
    sent = json.loads(router.sent("POST", "/v1/workflows")[0].content)
    assert sent["steps"][1]["args"] == {"region": "dc1", "dry_run": False}


def test_the_guarded_loader_reads_json_too() -> None:
    assert _workflows.load_guarded_yaml('{"steps": [{"task": "t"}]}') == {"steps": [{"task": "t"}]}
