"""What ``craton-wf`` writes to its log as it starts: the migrations it runs, by
name, and not the names of alembic's autogenerate plugins (ten lines a start)."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.test_executor_choice import run_cli


def test_migrate_logs_the_migrations_it_runs_and_not_alembics_plugins(tmp_path: Path) -> None:
    done = run_cli(tmp_path, "migrate")
    assert done.returncode == 0, done.stderr
    assert "Running upgrade  -> 0001, initial schema" in done.stderr
    assert "setup plugin" not in done.stderr
