"""Rollout waves of a job: the waves asked for, their sizes, the wave under way, the pause and gate

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 05:00:00.000000
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("waves", JSON, nullable=True))
        batch_op.add_column(sa.Column("wave_sizes", JSON, nullable=True))
        batch_op.add_column(
            sa.Column("current_wave", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("wave_pause_seconds", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("wave_gate", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("next_wave_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_jobs_next_wave_at"), ["next_wave_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jobs_next_wave_at"))
        batch_op.drop_column("next_wave_at")
        batch_op.drop_column("wave_gate")
        batch_op.drop_column("wave_pause_seconds")
        batch_op.drop_column("current_wave")
        batch_op.drop_column("wave_sizes")
        batch_op.drop_column("waves")
