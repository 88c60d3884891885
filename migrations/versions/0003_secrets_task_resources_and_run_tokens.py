"""secrets, task resources and secrets, run tokens, root approvals

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 07:52:17.764781

New non-null columns get a server default only while existing rows are
filled in; the models keep their Python-side defaults, as elsewhere.
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "secrets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("ciphertext", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_secrets_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_secrets_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_secrets")),
        sa.UniqueConstraint("project_id", "name", name="uq_secrets_project_name"),
    )
    with op.batch_alter_table("secrets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_secrets_project_id"), ["project_id"], unique=False)

    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("run_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_api_tokens_run_id"), ["run_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_api_tokens_run_id_runs"), "runs", ["run_id"], ["id"], ondelete="CASCADE"
        )

    with op.batch_alter_table("task_approvals", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("by_root", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resources", JSON, nullable=False, server_default="{}"))
        batch_op.add_column(sa.Column("secrets", JSON, nullable=False, server_default="[]"))

    with op.batch_alter_table("task_approvals", schema=None) as batch_op:
        batch_op.alter_column("by_root", server_default=None)
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.alter_column("resources", server_default=None)
        batch_op.alter_column("secrets", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("secrets")
        batch_op.drop_column("resources")

    with op.batch_alter_table("task_approvals", schema=None) as batch_op:
        batch_op.drop_column("by_root")

    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_api_tokens_run_id_runs"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_api_tokens_run_id"))
        batch_op.drop_column("run_id")

    with op.batch_alter_table("secrets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_secrets_project_id"))

    op.drop_table("secrets")
