"""Ids are never reused: SQLite tables with an integer id get AUTOINCREMENT

SQLite gives a new row the largest id plus one, so deleting the newest host
handed its id to the next one. With ``AUTOINCREMENT`` it keeps the largest
id ever used (``sqlite_sequence``). SQLite cannot add it to a table in place:
batch mode recreates each table and copies its rows, ids kept. PostgreSQL's
sequences never reuse an id; nothing changes there.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 21:50:00.000000
"""

from alembic import op


revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TABLES = (
    "users",
    "api_tokens",
    "clouds",
    "regions",
    "cells",
    "hosts",
    "tasks",
    "task_approvals",
    "secrets",
    "task_sources",
    "builds",
    "workflows",
    "workflow_versions",
    "jobs",
    "job_hosts",
    "runs",
    "audit_events",
)


def _recreate(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass


def upgrade() -> None:
    _recreate(True)


def downgrade() -> None:
    _recreate(False)
