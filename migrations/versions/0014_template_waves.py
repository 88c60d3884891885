"""Rollout waves of a job template: the waves its jobs roll out in, the pause and gate

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 05:30:00.000000
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job_templates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("waves", JSON, nullable=True))
        batch_op.add_column(
            sa.Column("wave_pause_seconds", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("wave_gate", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("job_templates", schema=None) as batch_op:
        batch_op.drop_column("wave_gate")
        batch_op.drop_column("wave_pause_seconds")
        batch_op.drop_column("waves")
