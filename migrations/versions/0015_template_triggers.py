"""Incoming triggers of job templates, and the launches each made

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 06:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "template_triggers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.Column("secret_ciphertext", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_template_triggers_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_template_triggers_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["job_templates.id"],
            name=op.f("fk_template_triggers_template_id_job_templates"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_template_triggers")),
    )
    op.create_index(op.f("ix_template_triggers_project_id"), "template_triggers", ["project_id"])
    op.create_index(op.f("ix_template_triggers_template_id"), "template_triggers", ["template_id"])
    op.create_table(
        "trigger_launches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trigger_id", sa.String(length=36), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("signature", sa.String(length=80), nullable=True),
        sa.Column("launched_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["trigger_id"],
            ["template_triggers.id"],
            name=op.f("fk_trigger_launches_trigger_id_template_triggers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trigger_launches")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_trigger_launches_trigger_time", "trigger_launches", ["trigger_id", "launched_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_trigger_launches_trigger_time", table_name="trigger_launches")
    op.drop_table("trigger_launches")
    op.drop_index(op.f("ix_template_triggers_template_id"), table_name="template_triggers")
    op.drop_index(op.f("ix_template_triggers_project_id"), table_name="template_triggers")
    op.drop_table("template_triggers")
