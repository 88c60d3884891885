"""A run records whether its stored log has a gap or was capped

``log_gap`` and ``log_capped`` tell a reader of a run (a succeeded one too)
that its stored log is not all of its output; ``attempt_log_seq`` is where
the current attempt's lines begin, which a runner taking the run over needs
to find where they end.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 21:00:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("attempt_log_seq", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("log_gap", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("log_capped", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.alter_column("attempt_log_seq", server_default=None)
        batch_op.alter_column("log_gap", server_default=None)
        batch_op.alter_column("log_capped", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("log_capped")
        batch_op.drop_column("log_gap")
        batch_op.drop_column("attempt_log_seq")
