"""``craton-wf``: the service's entry points — serve, runner, migrate, bootstrap."""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import click

from craton_wf import __version__
from craton_wf.errors import BuildError, CratonError
from craton_wf.service_log import FORMATS, configure_logging
from craton_wf.settings import Settings, load_settings

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _settings(ctx: click.Context) -> Settings:
    return ctx.obj["settings"]


def _fail(message: str) -> None:
    click.echo(f"ERROR: {message}", err=True)
    sys.exit(1)


@click.group()
@click.option(
    "--database-url",
    envvar="CRATON_WF_DATABASE_URL",
    default=None,
    help="SQLAlchemy URL (default: sqlite:///craton-wf.db)",
)
@click.option(
    "--log-level",
    envvar="CRATON_WF_LOG_LEVEL",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    default="INFO",
    show_default=True,
    help="INFO: state changes of builds, jobs and runs, and the API's access log; "
    "WARNING: problems only",
)
@click.option(
    "--log-format",
    envvar="CRATON_WF_LOG_FORMAT",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="json: one JSON object per line (ts, level, logger, message, exc)",
)
@click.version_option(__version__)
@click.pass_context
def main(ctx: click.Context, database_url: str | None, log_level: str, log_format: str) -> None:
    """craton-wf: build tasks into images, run workflows over inventory as jobs."""
    configure_logging(log_level, log_format)
    # alembic names each of its autogenerate plugins at INFO on every start; the
    # migrations it runs ("Running upgrade …") stay at the level asked for.
    logging.getLogger("alembic.runtime.plugins").setLevel(
        max(logging.WARNING, logging.getLogger().level)
    )
    overrides: dict[str, Any] = {"database_url": database_url} if database_url else {}
    try:
        ctx.obj = {
            "settings": load_settings(**overrides),
            "log_level": log_level.lower(),
            "log_format": log_format,
            "database_url": database_url,
        }
    except Exception as exc:  # pydantic's ValidationError: name the bad setting
        _fail(f"invalid settings: {exc}")


@main.command("generate-key")
def generate_key() -> None:
    """Print a new secret key for CRATON_WF_SECRET_KEY (encrypts project secrets)."""
    from cryptography.fernet import Fernet

    click.echo(Fernet.generate_key().decode())


@main.command()
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Upgrade the database schema to the newest migration."""
    from craton_wf.db.migrate import upgrade

    upgrade(_settings(ctx))
    click.echo("database is up to date")


@main.command("check-environment")
@click.pass_context
def check_environment(ctx: click.Context) -> None:
    """List stored secrets, tasks, workflows and unfinished jobs naming an environment
    variable a task may not be given (BASH_ENV, LD_PRELOAD, PYTHON*…); exit 1 if any."""
    from craton_wf.db.engine import make_engine
    from craton_wf.services.environment_check import refused_rows

    engine = make_engine(_settings(ctx))
    try:
        with engine.connect() as connection:
            found = refused_rows(connection)
    finally:
        engine.dispose()
    for row in found:
        click.echo(row.describe())
    if found:
        _fail(f"{len(found)} stored object(s) name refused environment variables")
    click.echo("no stored object names a refused environment variable")


@main.command()
@click.option("--project", "project_name", default="default", show_default=True)
@click.option("--user", "user_name", default="root", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json", "env"]), default="text")
@click.pass_context
def bootstrap(ctx: click.Context, project_name: str, user_name: str, fmt: str) -> None:
    """Create the first project and its root user; print the credentials (shown once)."""
    from craton_wf.db.engine import make_engine, make_session_factory, transaction
    from craton_wf.db.migrate import upgrade
    from craton_wf.services.auth import bootstrap as do_bootstrap

    settings = _settings(ctx)
    upgrade(settings)
    sessions = make_session_factory(make_engine(settings))
    try:
        with transaction(sessions) as session:
            done = do_bootstrap(session, project_name, user_name)
            values = {
                "project_id": done.project.id,
                "project": done.project.name,
                "username": done.user.name,
                "token": done.token.token,
            }
    except CratonError as exc:
        _fail(exc.message)
    scheme = "https" if settings.serves_tls else "http"
    url = settings.public_url or f"{scheme}://{settings.api_host}:{settings.api_port}"
    if fmt == "json":
        click.echo(json.dumps({**values, "url": url}))
    elif fmt == "env":
        click.echo(
            f"export CRATON_URL={url}\nexport OS_PROJECT_ID={values['project_id']}\n"
            f"export OS_USERNAME={values['username']}\nexport OS_PASSWORD={values['token']}"
        )
    else:
        click.echo(
            f"project:  {values['project']} ({values['project_id']})\n"
            f"user:     {values['username']} (root)\ntoken:    {values['token']}\n\n"
            "The token is shown only once. Use it with the craton CLI:\n"
            f"  export CRATON_URL={url}\n  export OS_PROJECT_ID={values['project_id']}\n"
            f"  export OS_USERNAME={values['username']}\n"
            f"  export OS_PASSWORD={values['token']}"
        )


def _serve_settings(ctx: click.Context, **tls: str | None) -> Settings:
    """The settings, with ``serve``'s TLS options over the environment's; the
    options also go into the environment, for the API worker processes."""
    given = {name: value for name, value in tls.items() if value is not None}
    if not given:
        return _settings(ctx)
    for name, value in given.items():
        os.environ[f"CRATON_WF_{name.upper()}"] = value
    database_url = ctx.obj.get("database_url")
    try:
        return load_settings(**({"database_url": database_url} if database_url else {}))
    except Exception as exc:  # pydantic's ValidationError: name the bad setting
        _fail(f"invalid settings: {exc}")
        raise


def _tune_gc() -> None:
    """For a long-running process, once its modules are loaded: the objects made
    so far (modules, mappings, compiled queries) leave the collector's view for
    good, and the youngest generation is collected every 10,000 allocations
    instead of 700. A runner allocates many short-lived ORM objects per batch;
    with the defaults the cyclic collector took about a tenth of its CPU
    (``bench.dispatch``: 1.21 -> 1.06 ms of runner CPU per run)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


def _make_runner(settings: Settings, sessions: Any, wakeup: threading.Event | None) -> Any:
    from functools import partial

    from craton_wf.builders.image import ImageBuilder
    from craton_wf.engine.schedule_firing import fire_due_schedules
    from craton_wf.executors import make_executor
    from craton_wf.runner.worker import Runner
    from craton_wf.services.schedules import launch_scheduled

    executor = make_executor(settings)
    executor.ping()
    # Runners build tasks with Docker whatever the executor. The fake one runs
    # no image and starts without an engine; its builds then fail saying why
    # (BuildExecution asks the engine first), never left BUILD PENDING.
    builder = ImageBuilder.from_settings(settings)
    try:
        builder.ping()
    except BuildError as exc:
        if settings.executor != "fake":
            raise
        logging.getLogger(__name__).warning("%s; task builds will fail", exc.message)
    # Schedules' jobs are made by the services' launch, handed down: the runner
    # and the engine do not import the API's use cases.
    launch = partial(launch_scheduled, require_approval=settings.require_approval)
    return Runner(
        settings,
        sessions,
        executor,
        builder,
        wakeup=wakeup,
        fire_schedules=partial(fire_due_schedules, sessions, launch),
    )


@main.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1)")
@click.option("--port", type=int, default=None, help="Port (default 7780)")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="API worker processes (default: CRATON_WF_WORKERS, else the CPU count)",
)
@click.option(
    "--with-runner/--no-runner",
    default=True,
    show_default=True,
    help="Run one runner in this process (the embedded default)",
)
@click.option("--migrate/--no-migrate", "run_migrations", default=True, show_default=True)
@click.option(
    "--tls-cert",
    type=click.Path(dir_okay=False),
    default=None,
    help="Serve https with this PEM certificate (and its chain); with --tls-key "
    "(default: CRATON_WF_TLS_CERT)",
)
@click.option(
    "--tls-key",
    type=click.Path(dir_okay=False),
    default=None,
    help="The certificate's unencrypted PEM private key (default: CRATON_WF_TLS_KEY)",
)
@click.option(
    "--tls-client-ca",
    type=click.Path(dir_okay=False),
    default=None,
    help="Mutual TLS: require client certificates signed by these PEM CA certificates "
    "(default: CRATON_WF_TLS_CLIENT_CA)",
)
@click.pass_context
def serve(
    ctx: click.Context,
    host: str | None,
    port: int | None,
    workers: int | None,
    with_runner: bool,
    run_migrations: bool,
    tls_cert: str | None,
    tls_key: str | None,
    tls_client_ca: str | None,
) -> None:
    """Serve the API (and, by default, one runner in the same process).

    With several workers (``api.workers``) the API runs in that many child
    processes and the runner in this one, which supervises them.
    """
    import uvicorn

    from craton_wf.api.app import create_app
    from craton_wf.api.operator_warnings import operator_warnings
    from craton_wf.api.tls import uvicorn_tls_options
    from craton_wf.api.workers import WakeupListener, export_for_workers
    from craton_wf.db.engine import make_engine, make_session_factory
    from craton_wf.db.migrate import upgrade
    from craton_wf.process_metrics import disable_multiprocess, enable_multiprocess

    settings = _serve_settings(ctx, tls_cert=tls_cert, tls_key=tls_key, tls_client_ca=tls_client_ca)
    try:
        tls_options = uvicorn_tls_options(settings)
    except CratonError as exc:
        _fail(exc.message)
    workers = workers or settings.workers
    # Several processes: each counts into files the one answering /metrics adds
    # up (process_metrics); set before the runner or a worker counts anything.
    # In the system's temporary directory, not the data dir: an API-only service
    # may run on a read-only file system whose only writable place is /tmp.
    metrics_dir = Path(tempfile.gettempdir()) / f"craton-wf-metrics-{os.getpid()}"
    if workers > 1:
        enable_multiprocess(metrics_dir)
    for warning in operator_warnings(settings):
        logging.getLogger(__name__).warning("%s", warning)
    if run_migrations:
        upgrade(settings)
    sessions = make_session_factory(make_engine(settings))
    wakeup = threading.Event()
    runner = None
    if with_runner:
        try:
            runner = _make_runner(settings, sessions, wakeup)
        except CratonError as exc:
            _fail(exc.message)
            return
        runner.start()
    listen = {
        "host": host or settings.api_host,
        "port": port or settings.api_port,
        "log_config": None,  # uvicorn's loggers go through configure_logging's root handler
        "log_level": ctx.obj.get("log_level", "info"),
        "access_log": True,
        **tls_options,
    }
    if workers > 1:
        # uvicorn's supervisor takes SIGTERM and SIGINT itself: it stops the
        # workers and returns, and the runner below hands its work over.
        export_for_workers(ctx.obj.get("database_url"), ctx.obj["log_level"], ctx.obj["log_format"])
        wakeups = WakeupListener(wakeup)
        if with_runner:
            wakeups.start()
        try:
            uvicorn.run("craton_wf.api.workers:worker_app", factory=True, workers=workers, **listen)
        finally:
            wakeups.close()
            clean = runner is None or runner.stop(timeout=settings.shutdown_grace_seconds)
            disable_multiprocess(metrics_dir)
            if not clean:
                os._exit(0)
        return
    app = create_app(settings, sessions, wakeup if with_runner else None)
    _tune_gc()
    # uvicorn stops serving on SIGTERM or SIGINT, then raises the signal again
    # under the handler it found: with Python's defaults the process would die
    # there (SIGTERM) or unwind with a KeyboardInterrupt (SIGINT), before the
    # runner below could hand its work over. These handlers take that signal.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: runner.request_stop() if runner else None)
    try:
        uvicorn.run(app, **listen)  # type: ignore[arg-type]
    finally:
        if runner is not None and not runner.stop(timeout=settings.shutdown_grace_seconds):
            os._exit(0)


@main.command()
@click.option("--name", default=None, help="A name shown in runner-list")
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Serve this runner's own /metrics on this port (default: "
    "CRATON_WF_RUNNER_METRICS_PORT, else none), at CRATON_WF_RUNNER_METRICS_HOST",
)
@click.pass_context
def runner(ctx: click.Context, name: str | None, metrics_port: int | None) -> None:
    """Run a runner: claim builds and runs from the database until stopped."""
    from craton_wf.db.engine import make_engine, make_session_factory
    from craton_wf.runner.metrics_port import serve_metrics

    settings = _settings(ctx)
    metrics_port = metrics_port or settings.runner_metrics_port
    if metrics_port is not None:
        metrics_host = settings.runner_metrics_host or settings.api_host
        token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
        try:
            serve_metrics(metrics_host, metrics_port, token)
        except OSError as exc:
            _fail(f"cannot serve the runner's metrics on {metrics_host}:{metrics_port}: {exc}")
    sessions = make_session_factory(make_engine(settings, pre_ping=False))
    try:
        worker = _make_runner(settings, sessions, None)
    except CratonError as exc:
        _fail(exc.message)
    if name:
        worker.name = name
    signal.signal(signal.SIGTERM, lambda *_: worker.request_stop())
    signal.signal(signal.SIGINT, lambda *_: worker.request_stop())
    click.echo(f"runner {worker.id} started", err=True)
    _tune_gc()
    if not worker.run_forever():
        # Containers still running were handed over to other runners; don't wait
        # for this process's threads that watched them.
        os._exit(0)


if __name__ == "__main__":  # pragma: no cover
    main()
