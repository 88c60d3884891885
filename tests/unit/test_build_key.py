"""The build key: what decides that a build may reuse an earlier build's image."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from craton_wf.builders.build_key import base_images, build_inputs, context_digest

BASE_ID = "sha256:" + "b" * 64


def write_context(root: Path, dockerfile: str = "FROM craton/busybox:latest\n") -> Path:
    (root / "scripts").mkdir(parents=True)
    (root / "Dockerfile").write_text(dockerfile)
    (root / "scripts" / "check.sh").write_text("echo checking\n")
    return root


def key_of(context: Path, labels: dict[str, str] | None = None, base_id: str = BASE_ID) -> str:
    inputs = build_inputs(context, "Dockerfile", labels or {}, lambda _reference: base_id)
    assert inputs is not None
    return inputs.key()


@pytest.mark.parametrize(
    "dockerfile, expected",
    [
        ("FROM craton/busybox:latest\nRUN true\n", ["craton/busybox:latest"]),
        (
            "# a comment\nfrom --platform=linux/amd64 craton/busybox:latest as base\n",
            ["craton/busybox:latest"],
        ),
        (
            "FROM craton/python:3 AS build\nRUN make\n"
            "FROM craton/busybox:latest\nCOPY --from=build /out /out\n"
            "COPY --from=0 /x /x\nCOPY --from=craton/tools:1 /bin/t /bin/t\n",
            ["craton/python:3", "craton/busybox:latest", "craton/tools:1"],
        ),
        ("ARG BASE=craton/busybox:latest\nFROM ${BASE}\n", ["craton/busybox:latest"]),
        ("ARG TAG=3\nFROM craton/python:$TAG\n", ["craton/python:3"]),
        ("FROM \\\n  craton/busybox:latest\n", ["craton/busybox:latest"]),
        ("# escape=`\nFROM `\n  craton/busybox:latest\n", ["craton/busybox:latest"]),
        ("FROM scratch\nCOPY tool /tool\n", []),
        ("FROM craton/busybox:latest AS one\nFROM one\n", ["craton/busybox:latest"]),
    ],
)
def test_base_images_are_read_from_the_dockerfile(dockerfile: str, expected: list[str]) -> None:
    assert base_images(dockerfile) == expected


@pytest.mark.parametrize(
    "dockerfile",
    [
        "ARG BASE\nFROM $BASE\n",  # known only from a build argument
        "FROM craton/python:${TAG:-3}\n",
        "FROM craton/busybox:latest\nARG STAGE=x\nCOPY --from=$STAGE /a /a\n",
        "FROM --platform=linux/amd64\n",
    ],
)
def test_a_base_known_only_at_build_time_gives_no_base_list(dockerfile: str) -> None:
    assert base_images(dockerfile) is None


def test_the_key_ignores_modification_times_and_the_checkouts_git_directory(
    tmp_path: Path,
) -> None:
    first = write_context(tmp_path / "first")
    second = write_context(tmp_path / "second")
    os.utime(second / "scripts" / "check.sh", (0, 0))
    (second / ".git").mkdir()
    (second / ".git" / "index").write_text("timestamps")

    assert context_digest(first) == context_digest(second)
    assert key_of(first) == key_of(second)
    # Which build made the image is not part of what the image is.
    assert key_of(first, {"craton.build": "1"}) == key_of(second, {"craton.build": "2"})


@pytest.mark.parametrize(
    "change",
    ["content", "mode", "new file", "dockerfile", "label", "base image"],
)
def test_every_input_changes_the_key(tmp_path: Path, change: str) -> None:
    context = write_context(tmp_path / "task")
    labels = {"craton.commit": "sha256:" + "1" * 64}
    before = key_of(context, labels)
    base_id = BASE_ID
    if change == "content":
        (context / "scripts" / "check.sh").write_text("echo changed\n")
    elif change == "mode":
        (context / "scripts" / "check.sh").chmod(0o755)
    elif change == "new file":
        (context / "scripts" / "more.sh").write_text("")
    elif change == "dockerfile":
        (context / "Dockerfile").write_text("FROM craton/busybox:latest\nENV X=1\n")
    elif change == "label":
        labels["craton.commit"] = "sha256:" + "2" * 64
    else:
        base_id = "sha256:" + "c" * 64

    assert key_of(context, labels, base_id) != before


def test_a_base_image_the_engine_lacks_gives_no_key(tmp_path: Path) -> None:
    context = write_context(tmp_path / "task")

    assert build_inputs(context, "Dockerfile", {}, lambda _reference: None) is None
