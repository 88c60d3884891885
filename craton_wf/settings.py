"""Settings of the service, read from the environment (prefix ``CRATON_WF_``).

Nothing reads them at import time: entry points call :func:`load_settings`
once and pass the object down to every factory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRATON_WF_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///craton-wf.db",
        description="SQLAlchemy URL: sqlite:///path or postgresql+psycopg://user:pw@host/db",
    )
    data_dir: Path = Field(default=Path(".craton-wf"), description="Scratch space for builds")
    api_host: str = "127.0.0.1"
    api_port: int = 7780
    public_url: str | None = Field(
        default=None, description="URL tasks use to reach the API (CRATON_URL in containers)"
    )

    executor: Literal["docker", "swarm", "kubernetes", "fake"] = "docker"
    docker_base_url: str | None = Field(
        default=None, description="Docker engine URL; default: DOCKER_HOST or the local socket"
    )

    runner_slots: int = Field(default=16, ge=1, description="Runs one runner executes at once")
    runner_poll_seconds: float = Field(default=0.5, gt=0)
    lease_seconds: float = Field(default=30.0, gt=0)
    heartbeat_seconds: float = Field(default=5.0, gt=0)
    stop_grace_seconds: float = Field(
        default=10.0, ge=0, description="Between SIGTERM and SIGKILL when a run is stopped"
    )
    shutdown_grace_seconds: float = Field(
        default=10.0,
        ge=0,
        description="On SIGTERM a runner lets running work finish this long, then hands it over",
    )
    build_slots: int = Field(default=2, ge=1, description="Builds one runner executes at once")
    remove_containers: bool = Field(
        default=True, description="Remove task containers once their logs and exit code are stored"
    )

    fault_point: str | None = Field(
        default=None,
        description="Tests only: the runner SIGKILLs itself at this point of a run "
        "(after_create, after_start, mid_logs, before_finish)",
    )

    build_timeout_seconds: int = Field(default=1800, gt=0)
    git_timeout_seconds: int = Field(default=300, gt=0)
    upload_max_bytes: int = Field(default=50 * 1024 * 1024, gt=0)
    image_prefix: str = Field(default="craton-task", description="Repository prefix of task images")
    registry: str | None = Field(
        default=None,
        description="Registry (host[:port][/namespace]) every build is pushed to; runs then "
        "use the image by digest. Unset: images stay on the local engine",
    )
    registry_username: str | None = None
    registry_password: SecretStr | None = None
    registry_push_timeout_seconds: int = Field(default=600, gt=0)

    page_default_limit: int = Field(default=100, ge=1)
    page_max_limit: int = Field(default=1000, ge=1)
    log_line_max_bytes: int = Field(default=16 * 1024, ge=256)


def load_settings(**overrides: object) -> Settings:
    """Read the settings from the environment, with explicit overrides on top."""
    return Settings(**overrides)  # type: ignore[arg-type]
