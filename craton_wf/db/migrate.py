"""Running the alembic migrations from code (``craton-wf migrate``, tests)."""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config

from craton_wf.settings import Settings


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("craton_wf.migrations")))
    config.set_main_option("sqlalchemy.url", settings.database_url.replace("%", "%%"))
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    command.upgrade(alembic_config(settings), revision)


def check(settings: Settings) -> None:
    """Raise when the models and the migrated schema differ (``alembic check``)."""
    command.check(alembic_config(settings))
