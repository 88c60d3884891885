"""Building one claimed task build: fetch the source, docker build, record the result."""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from craton_wf.builders.image import ImageBuilder
from craton_wf.builders.source import fetch_git, redact_url, resolve_context, unpack_archive
from craton_wf.db.engine import transaction
from craton_wf.db.models import utcnow
from craton_wf.engine import builds as build_service
from craton_wf.engine import source_rules
from craton_wf.engine.builds import BuildAssignment
from craton_wf.errors import BuildError, CratonError, LeaseLost
from craton_wf.process_metrics import process_metrics
from craton_wf.settings import Settings

log = logging.getLogger(__name__)


def image_reference(settings: Settings, build: BuildAssignment) -> str:
    """``<prefix>/<project>-<task>:<build number>``, valid as a Docker reference."""
    slug = re.sub(r"[^a-z0-9]+", "-", build.task_name.lower()).strip("-") or "task"
    return f"{settings.image_prefix}/{build.project_id[:8]}-{slug}:{build.number}"


def registry_auth(settings: Settings) -> dict[str, str] | None:
    """Credentials for the registry, from the settings only (never from a task)."""
    if not settings.registry_username:
        return None
    password = settings.registry_password.get_secret_value() if settings.registry_password else ""
    return {"username": settings.registry_username, "password": password}


class BuildExecution:
    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        builder: ImageBuilder,
        owner: str,
        build: BuildAssignment,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.builder = builder
        self.owner = owner
        self.build = build
        self._pending: list[tuple[datetime, str]] = []
        self._last_flush = time.monotonic()

    def _tx(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with transaction(self.sessions) as session:
            return fn(session, self.build.build_id, self.owner, self.build.epoch, *args, **kwargs)

    def log(self, line: str) -> None:
        self._pending.append((utcnow(), line))
        if time.monotonic() - self._last_flush >= 0.25 or len(self._pending) >= 200:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self._tx(build_service.append_build_logs, self._pending)
            self._pending = []
        self._last_flush = time.monotonic()

    def run(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        workdir = Path(
            tempfile.mkdtemp(prefix=f"build-{self.build.build_id}-", dir=self.settings.data_dir)
        )
        started = time.monotonic()
        outcome = "FAILED"
        try:
            image, digest = self._build(workdir / "src")
            self.flush()
            self._tx(build_service.finish_build, image=image, digest=digest)
            outcome = "READY"
        except LeaseLost as exc:
            log.warning("build %s: %s", self.build.build_id, exc)
            outcome = "LOST"
        except CratonError as exc:
            self._fail(exc.message)
        except Exception as exc:  # the runner must record every build's end
            log.exception("build %s failed in the runner", self.build.build_id)
            self._fail(f"internal error: {exc}")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
            process_metrics().build_duration.labels(outcome).observe(time.monotonic() - started)

    def _fail(self, message: str) -> None:
        try:
            self.log(f"ERROR: {message}")
            self.flush()
            self._tx(build_service.finish_build, error=message)
        except LeaseLost as exc:
            log.warning("build %s: %s", self.build.build_id, exc)

    def _check_engine(self) -> None:
        """A build needs a Docker engine, whatever runs the tasks (the fake
        executor's runner starts without one): fail saying so when none answers."""
        try:
            self.builder.ping()
        except BuildError as exc:
            raise BuildError(f"builds need a Docker engine: {exc.message}") from exc

    def _build(self, src: Path) -> tuple[str, str | None]:
        build = self.build
        if build.source_type == "git":
            # The URL was checked at the API, but maybe under other settings: again, here.
            where = build.ref or "the default branch"
            self.log(f"fetching {redact_url(build.location)} at {where}")
            commit = fetch_git(
                build.location,
                build.ref,
                src,
                timeout=self.settings.git_timeout_seconds,
                policy=source_rules.git_source_policy(self.settings),
                max_bytes=self.settings.git_max_bytes,
            )
        else:
            self.log(f"unpacking the uploaded source ({build.archive_sha256})")
            src.mkdir(parents=True)
            limits = source_rules.archive_limits(self.settings)
            unpack_archive(
                build.archive or b"",
                src,
                max_files=limits.max_members,
                max_bytes=limits.max_bytes,
                max_ratio=limits.max_ratio,
            )
            commit = f"sha256:{build.archive_sha256}"
        self._tx(build_service.record_commit, commit)
        self.log(f"source at commit {commit}")
        context, dockerfile = resolve_context(src, build.subdir, build.dockerfile)
        tag = image_reference(self.settings, build)
        self._check_engine()
        self.log(f"building {tag}")
        built = self.builder.build(
            context,
            dockerfile,
            tag,
            labels={
                "craton.project": build.project_id,
                "craton.task": str(build.task_id),
                "craton.build": str(build.build_id),
                "craton.commit": commit,
            },
            on_log=self.log,
            timeout=self.settings.build_timeout_seconds,
        )
        self.log(f"built {built.image} ({built.image_id})")
        if not self.settings.registry:
            return built.image, built.digest
        # READY only once the registry has the image; runs use it by digest.
        pushed = self.builder.push(
            built.image,
            self.settings.registry,
            on_log=self.log,
            timeout=self.settings.registry_push_timeout_seconds,
            auth=registry_auth(self.settings),
        )
        self.log(f"pushed {pushed.reference}")
        return pushed.reference, pushed.digest
