"""Counts of jobs and runs by final state that left with a deleted project

``/metrics`` counts jobs and runs by final state from their rows; deleting a
project deletes its jobs and runs, and these rows keep what they counted, so
the counters never go down.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 04:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retired_counts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retired_counts")),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("retired_counts")
