"""Report stored environment names that the platform now refuses

Secrets, tasks' declared secrets, workflow steps and unfinished jobs naming
BASH_ENV, LD_PRELOAD, PYTHON* and the like (craton_wf.domain.environment) are
logged as warnings, one line each, and left as they are: an operator decides
what replaces them (``craton-wf check-environment`` lists them again). No
schema change.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 21:00:00.000000
"""

import logging

from alembic import op

from craton_wf.services.environment_check import refused_rows


revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")


def upgrade() -> None:
    found = refused_rows(op.get_bind())
    for row in found:
        log.warning("refused environment name: %s", row.describe())
    if found:
        log.warning(
            "%d stored object(s) name refused environment variables; they are kept but "
            "will not run: see craton-wf check-environment",
            len(found),
        )


def downgrade() -> None:
    pass
