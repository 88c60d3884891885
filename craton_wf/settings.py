"""Settings of the service, read from the environment (prefix ``CRATON_WF_``).

Nothing reads them at import time: entry points call :func:`load_settings`
once and pass the object down to every factory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Used when no key is set, so a development setup works out of the box; a
# production service refuses it (and any other placeholder).
DEVELOPMENT_SECRET_KEY = "Y3JhdG9uLXdmIGRldmVsb3BtZW50IGtleSwgbm90IGE="
PLACEHOLDER_SECRET_KEYS = frozenset(
    {"", "changethis", "change-me", "changeme", "secret", DEVELOPMENT_SECRET_KEY}
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRATON_WF_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///craton-wf.db",
        description="SQLAlchemy URL: sqlite:///path or postgresql+psycopg://user:pw@host/db",
    )
    sqlite_lock_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="On SQLite, how long a write waits for another's write lock; past it an "
        "API request answers 503 with Retry-After (and a runner retries)",
    )
    data_dir: Path = Field(default=Path(".craton-wf"), description="Scratch space for builds")
    api_host: str = "127.0.0.1"
    api_port: int = 7780
    workers: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        description="API worker processes of `serve` (default: the CPU count); its one "
        "runner runs in the parent process",
    )
    public_url: str | None = Field(
        default=None,
        description="URL tasks use to reach the API (CRATON_URL in containers); default: "
        "http(s)://host.docker.internal:<api_port>, the gateway of the task's project network "
        "(docker executor only)",
    )

    external_url: str | None = Field(
        default=None,
        description="URL clients reach the API at (behind a proxy, say), for the absolute "
        "links of lists and Location headers; default: the request's own scheme and host",
    )
    trust_forwarded_headers: bool = Field(
        default=False,
        description="Take the scheme and host of links from X-Forwarded-Proto and "
        "X-Forwarded-Host: only behind a proxy that sets them",
    )

    tls_cert: Path | None = Field(
        default=None,
        description="PEM certificate (its chain after it) `serve` presents: the API serves "
        "https (`serve --tls-cert`); needs tls_key",
    )
    tls_key: Path | None = Field(
        default=None, description="PEM private key of tls_cert, unencrypted (`serve --tls-key`)"
    )
    tls_client_ca: Path | None = Field(
        default=None,
        description="PEM CA certificates: every client must present a certificate one of them "
        "signed (mutual TLS, `serve --tls-client-ca`)",
    )
    tls_client_user_field: Literal["CN", "UID", "emailAddress"] | None = Field(
        default=None,
        description="With mutual TLS, a request without a token acts as the user named by this "
        "field of its certificate's subject; unset: the certificate opens the connection only, "
        "requests still need a token",
    )
    tls_task_ca: Path | None = Field(
        default=None,
        description="PEM CA certificates a task trusts its https CRATON_URL by, given to it as "
        "CRATON_CACERT_PEM",
    )

    executor: Literal["docker", "swarm", "kubernetes", "fake"] = "docker"
    docker_base_url: str | None = Field(
        default=None, description="Docker engine URL; default: DOCKER_HOST or the local socket"
    )
    kubernetes_namespace: str | None = Field(
        default=None,
        description="Namespace of the runs' Jobs; default: the service account's in a cluster, "
        "else the kubeconfig context's, else 'default'",
    )
    kubernetes_kubeconfig: str | None = Field(
        default=None, description="Kubeconfig file; default: KUBECONFIG or ~/.kube/config"
    )
    kubernetes_context: str | None = Field(
        default=None, description="Kubeconfig context; default: its current context"
    )
    kubernetes_in_cluster: bool | None = Field(
        default=None,
        description="Use the pod's service account; default: when running in a cluster "
        "and no kubeconfig is set",
    )
    kubernetes_image_pull_secrets: list[str] = Field(
        default_factory=list, description='Secrets to pull task images with, JSON: ["regcred"]'
    )
    kubernetes_ttl_seconds_after_finished: int | None = Field(
        default=86400,
        ge=0,
        description="Kubernetes deletes a finished Job after this long, if no runner removed it",
    )
    kubernetes_service_account: str | None = Field(
        default=None, description="Service account of the task pods (its token is not mounted)"
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
    webhook_allow_private: bool = Field(
        default=False,
        description="Allow webhook URLs over plain http and to hosts that are (or resolve to) "
        "loopback, private, link-local or other non-public addresses",
    )
    webhook_retry_seconds: float = Field(
        default=24 * 3600,
        gt=0,
        description="How long a webhook delivery is retried before it is given up as failed",
    )
    webhook_backoff_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Wait before a webhook delivery's first retry; doubled at each next one "
        "(at most an hour), with jitter",
    )
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, description="How long one webhook delivery attempt may take"
    )
    trigger_rate_per_minute: int = Field(
        default=30,
        ge=1,
        description="Jobs one template trigger may launch in any minute; more answer 429",
    )
    remove_containers: bool = Field(
        default=True, description="Remove task containers once their logs and exit code are stored"
    )
    sweep_seconds: float = Field(
        default=300.0,
        ge=0,
        description="With remove_containers, a runner removes containers other runners left "
        "behind (stopped before removing them) at its start and then this often; 0: never",
    )

    fault_point: str | None = Field(
        default=None,
        description="Tests only: the runner SIGKILLs itself at this point of a run "
        "(after_create, after_start, mid_logs, before_finish)",
    )

    build_timeout_seconds: int = Field(default=1800, gt=0)
    git_timeout_seconds: int = Field(default=300, gt=0)
    upload_max_bytes: int = Field(default=50 * 1024 * 1024, gt=0)
    upload_max_members: int = Field(
        default=10_000, ge=1, description="Most files and directories an uploaded archive may hold"
    )
    upload_max_unpacked_bytes: int = Field(
        default=200 * 1024 * 1024, gt=0, description="Most an uploaded archive may unpack to"
    )
    upload_max_ratio: int = Field(
        default=100,
        ge=1,
        description="Most an uploaded archive may expand (unpacked / compressed, past 1 MiB)",
    )
    request_max_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest request body of every route but the uploads (upload_max_bytes)",
    )
    git_max_bytes: int = Field(
        default=200 * 1024 * 1024,
        gt=0,
        description="Most a clone may write: its fetched objects, and its checked-out files",
    )
    git_ssh_allowed_hosts: list[str] = Field(
        default_factory=list,
        description='Hosts task sources may name over ssh, JSON: ["git.example.com"]; '
        "none by default",
    )
    git_allow_http: bool = Field(default=False, description="Allow plain http:// git URLs")
    git_allow_private_hosts: bool = Field(
        default=False,
        description="Allow git hosts that are (or resolve to) loopback, private, link-local "
        "or other non-public addresses",
    )
    git_allow_local_sources: bool = Field(
        default=False, description="Tests only: allow file:// git URLs (the runner's own disk)"
    )
    image_prefix: str = Field(default="craton-task", description="Repository prefix of task images")
    registry: str | None = Field(
        default=None,
        description="Registry (host[:port][/namespace]) every build is pushed to; runs then "
        "use the image by digest. Unset: images stay on the local engine",
    )
    registry_username: str | None = None
    registry_password: SecretStr | None = None
    registry_push_timeout_seconds: int = Field(default=600, gt=0)

    console_session_hours: float = Field(
        default=12,
        gt=0,
        le=24 * 30,
        description="How long a web console sign-in lasts (it ends sooner with its token)",
    )

    require_approval: bool = Field(
        default=True,
        description="Jobs run only builds an admin (not their author) approved by digest",
    )

    production: bool = Field(
        default=False,
        description="Production mode: the service refuses to start without a real secret_key",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Fernet key (urlsafe base64 of 32 bytes) encrypting project secrets; "
        "make one with craton-wf generate-key",
    )

    task_token_ttl_seconds: int = Field(
        default=3600,
        ge=60,
        description="Lifetime of the CRATON_TOKEN a task container gets (revoked when it ends)",
    )
    task_memory_mb: int = Field(default=512, ge=16, description="Memory of a task container")
    task_cpus: float = Field(default=1.0, gt=0, description="CPUs of a task container")
    task_pids: int = Field(default=256, ge=8, description="Processes of a task container")
    task_tmpfs_mb: int = Field(default=64, ge=1, description="Size of a container's /tmp")
    task_max_memory_mb: int = Field(default=4096, ge=16, description="Most a task may ask for")
    task_max_cpus: float = Field(default=4.0, gt=0, description="Most a task may ask for")
    task_max_pids: int = Field(default=4096, ge=8, description="Most a task may ask for")
    task_network_allowed: bool = Field(
        default=True, description="Whether a task may declare needs_network at all"
    )
    task_network_firewall: bool = Field(
        default=False,
        description="Docker executor: the runner installs iptables rules for each project "
        "network: no link-local (metadata) addresses, no port of the host but the API's",
    )

    page_default_limit: int = Field(default=100, ge=1)
    page_max_limit: int = Field(default=1000, ge=1)
    log_line_max_bytes: int = Field(default=16 * 1024, ge=256)
    run_log_max_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024,
        description="Output one run may store; past it a marker line and nothing more",
    )

    container_log_max_size: str = Field(
        default="64m",
        pattern=r"^[1-9][0-9]*[kmg]$",
        description="The Docker engine's own log file of a task container, before it rotates",
    )
    container_log_max_files: int = Field(
        default=2, ge=1, le=16, description="Rotated log files the engine keeps per container"
    )

    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token /metrics (and a runner's metrics port) require; unset: "
        "they answer anyone who reaches them, so keep them to the operators' network",
    )
    metrics_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How long /metrics reuses the fleet's figures it read from the database",
    )
    runner_metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port a standalone `craton-wf runner` serves its own /metrics on; "
        "unset: none (`serve`'s embedded runner is in the API's /metrics)",
    )
    runner_metrics_host: str | None = Field(
        default=None,
        description="Address of the runner's metrics port; default: api_host",
    )

    @model_validator(mode="after")
    def _refuse_placeholder_key_in_production(self) -> Settings:
        if self.production and self.secret_key_value in PLACEHOLDER_SECRET_KEYS:
            raise ValueError(
                "production mode needs a real CRATON_WF_SECRET_KEY "
                "(craton-wf generate-key makes one), not a placeholder"
            )
        return self

    @field_validator("tls_client_user_field", mode="before")
    @classmethod
    def _empty_means_unset(cls, value: object) -> object:
        # A stack file or chart that sets the variable to "" means no mapping.
        return None if value == "" else value

    @property
    def serves_tls(self) -> bool:
        """Whether the API is served over https (``serve --tls-cert``): the one place
        to ask, e.g. for a cookie's ``Secure`` flag (a request's ``url.scheme`` says
        the same for the request at hand, proxies aside)."""
        return self.tls_cert is not None

    @property
    def secret_key_value(self) -> str:
        if self.secret_key is None:
            return DEVELOPMENT_SECRET_KEY
        return self.secret_key.get_secret_value().strip()


def load_settings(**overrides: object) -> Settings:
    """Read the settings from the environment, with explicit overrides on top."""
    return Settings(**overrides)  # type: ignore[arg-type]
