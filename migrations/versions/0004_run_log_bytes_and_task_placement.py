"""runs.log_bytes (the per-run log cap), tasks.placement and tasks.execution_changed_by

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 19:45:00.000000
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("log_bytes", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.alter_column("log_bytes", server_default=None)
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("placement", JSON, nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("execution_changed_by", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_tasks_execution_changed_by_users"),
            "users",
            ["execution_changed_by"],
            ["id"],
            ondelete="SET NULL",
        )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.alter_column("placement", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_tasks_execution_changed_by_users"), type_="foreignkey"
        )
        batch_op.drop_column("execution_changed_by")
        batch_op.drop_column("placement")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("log_bytes")
