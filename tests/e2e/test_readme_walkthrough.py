"""The README's "Using it" walkthrough, run as written against a live server.

Its first shell block installs, bootstraps and starts the server: here
``start_server`` does that (the install itself is tests/deploy/test_install_matrix.py).
Every later shell block of the section runs in one bash, ``set -e``, with the
``craton`` CLI on PATH and the live server's ``CRATON_URL`` and credentials,
from the repository's root, so a command of the README that stopped working
fails here: the example tasks are built, approved by a second admin, and the
runbook and the audit run to success in real containers.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import _base_image
from tests.e2e.conftest import start_server, stop

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.slow, pytest.mark.sqlite_only]


def section(markdown: str, title: str) -> str:
    """The text under the ``## title`` heading, up to the next heading of that level."""
    start = markdown.index(f"\n## {title}\n")
    following = markdown.find("\n## ", start + 1)
    return markdown[start : following if following > 0 else len(markdown)]


def shell_blocks(text: str) -> list[str]:
    return re.findall(r"^```(?:sh|bash|shell)\n(.*?)^```", text, re.MULTILINE | re.DOTALL)


def test_the_walkthrough_blocks_are_found() -> None:
    blocks = shell_blocks(section((ROOT / "README.md").read_text(), "Using it"))
    assert len(blocks) >= 2
    setup = blocks[0]
    # What start_server stands in for, and files the setup names.
    assert "craton-wf bootstrap" in setup and "craton-wf serve" in setup
    for path in ("constraints.txt", "scripts/make-base-images.sh", "client/pyproject.toml"):
        assert (ROOT / path).exists(), path
    assert "craton " in "".join(blocks[1:])


def cli_on_path(bin_dir: Path) -> Path:
    """A ``craton`` and a ``python3`` of this test's interpreter, as an install gives them."""
    bin_dir.mkdir()
    craton = bin_dir / "craton"
    craton.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m cratonclient.shell.main "$@"\n')
    craton.chmod(0o755)
    (bin_dir / "python3").symlink_to(sys.executable)
    return bin_dir


def test_the_readme_walkthrough_runs_as_written(database_url: str, tmp_path: Path) -> None:
    _base_image("craton/python-task:3", "python")  # the examples' base
    blocks = shell_blocks(section((ROOT / "README.md").read_text(), "Using it"))
    script = "set -euo pipefail\nset -x\n" + "\n".join(blocks[1:])
    server = start_server(database_url, tmp_path, embedded=True)
    try:
        bin_dir = cli_on_path(tmp_path / "bin")
        env = {**server.env, "PATH": f"{bin_dir}:{server.env['PATH']}"}
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, (
            f"the README's walkthrough failed ({done.returncode}):\n"
            f"{done.stdout[-4000:]}\n{done.stderr[-6000:]}"
        )
        jobs = server.json("job-list")
        assert [j["status"] for j in jobs] == ["SUCCEEDED", "SUCCEEDED"], jobs  # type: ignore[index]
        assert "patching compute-1" in done.stdout
    finally:
        stop(server.processes)
