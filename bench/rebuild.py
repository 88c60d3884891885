"""Rebuilding an unchanged task, against a fully cached ``docker build`` of the same
context, measured in the same run.

    python -m bench.rebuild [--rounds 3] [--registry 127.0.0.1:5000] [--database-url …]

A task is registered from a local directory (uploaded as a ``.tar.gz``, as
``craton task-create --directory`` does) and built once by a runner. Then,
``--rounds`` times, interleaved:

- the baseline: the same directory built through the Docker SDK exactly as the
  platform calls it (``APIClient.build``, legacy builder, no pull), after one
  warm-up build so that every step is cached;
- the platform: a rebuild of the unchanged task requested as ``task-build``
  does (the service call of the API's route, in one transaction), executed by a
  runner with the real image builder; timed from the committed request to the
  build's ``finished_at``, stamped by the runner.

With ``--registry`` both sides also push to that registry (the baseline pushes
its image after building it); without it neither pushes. The medians are
compared (target: ratio <= 1.10). Each round also prints the rebuild's digest,
so a rebuild that made a new image (an approval no longer holding) shows.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import statistics
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

import docker
import docker.errors

from bench.harness import IMAGE, Platform, ensure_image, make_platform, report
from craton_wf.builders.image import ImageBuilder
from craton_wf.db.engine import transaction
from craton_wf.db.models import Build, Task, utcnow
from craton_wf.domain.states import BuildStatus
from craton_wf.executors import make_executor
from craton_wf.runner.worker import Runner
from craton_wf.services import tasks as task_service
from craton_wf.services.inputs import TaskCreate

TASK_FILES = {
    "Dockerfile": (
        f"FROM {IMAGE}\n"
        "COPY check.sh /craton/check.sh\n"
        "RUN chmod 0755 /craton/check.sh\n"
        "ENV CHECK_MODE=audit\n"
        'CMD ["/craton/check.sh"]\n'
    ),
    "check.sh": '#!/bin/sh\necho "checking $1"\n',
}
MAX_ARCHIVE_BYTES = 10 * 1024 * 1024


def write_task_directory(root: Path) -> Path:
    directory = root / "task"
    directory.mkdir()
    for name, text in TASK_FILES.items():
        (directory / name).write_text(text)
    return directory


def pack(directory: Path) -> bytes:
    """The directory's files as a deterministic ``.tar.gz``, as the CLI uploads it."""
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as archive,
    ):
        for path in sorted(directory.iterdir()):
            archive.add(path, arcname=path.name, filter=_as_root)
    return buffer.getvalue()


def _as_root(member: tarfile.TarInfo) -> tarfile.TarInfo:
    member.uid = member.gid = 0
    member.uname = member.gname = "root"
    return member


def start_building_runner(platform: Platform) -> Runner:
    settings = platform.settings
    runner = Runner(
        settings, platform.sessions, make_executor(settings), ImageBuilder.from_settings(settings)
    )
    runner.start()
    platform.runner = runner
    return runner


def wait_for_build(platform: Platform, build_id: int, timeout: float = 600) -> Build:
    """The build once it is READY or FAILED, looked at ten times a second."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with transaction(platform.sessions) as session:
            build = session.get(Build, build_id)
            assert build is not None
            if build.status in (BuildStatus.READY.value, BuildStatus.FAILED.value):
                session.expunge(build)
                return build
        time.sleep(0.1)
    raise TimeoutError(f"build {build_id} did not finish in {timeout}s")


def rebuild(platform: Platform, task_id: int) -> tuple[float, Build]:
    """Request a build of the unchanged task; seconds from the committed request to
    the runner's ``finished_at``, and the finished build."""
    with transaction(platform.sessions) as session:
        task = session.get(Task, task_id)
        assert task is not None
        build_id = task_service.request_build(
            session, task, None, max_archive_bytes=MAX_ARCHIVE_BYTES
        ).id
    committed_at = utcnow()
    assert platform.runner is not None
    platform.runner.wakeup.set()
    build = wait_for_build(platform, build_id)
    if build.status != BuildStatus.READY.value or build.finished_at is None:
        raise RuntimeError(f"rebuild {build.number} failed: {build.error}")
    return (build.finished_at - committed_at).total_seconds(), build


def cached_docker_build(
    client: docker.APIClient, context: Path, tag: str, registry: str | None
) -> float:
    """Seconds of ``docker build`` of ``context`` (and its push to ``registry``)."""
    start = time.perf_counter()
    image_id = None
    for chunk in client.build(
        path=str(context), tag=tag, rm=True, forcerm=True, decode=True, pull=False
    ):
        if "error" in chunk:
            raise RuntimeError(chunk["error"])
        image_id = (chunk.get("aux") or {}).get("ID", image_id)
    if registry:
        repository, _, version = f"{registry}/{tag}".rpartition(":")
        client.tag(tag, repository, version)
        for chunk in client.push(repository, tag=version, stream=True, decode=True):
            if "error" in chunk:
                raise RuntimeError(chunk["error"])
    assert image_id, "the baseline build named no image"
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--registry", default=None, help="push in both (host:port)")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    ensure_image()
    platform = make_platform(args.database_url, image_prefix="craton-bench", registry=args.registry)
    client = docker.APIClient()
    directory = write_task_directory(Path(tempfile.mkdtemp(prefix="craton-bench-task-")))
    baseline_tag = f"craton-bench/baseline-{uuid.uuid4().hex[:8]}:1"
    try:
        with transaction(platform.sessions) as session:
            task = task_service.create_task(
                session,
                platform.project_id,
                None,
                TaskCreate(name="audit", command="/craton/check.sh"),
                pack(directory),
                MAX_ARCHIVE_BYTES,
            )
            task_id, first_id = task.id, task.current_build_id
        assert first_id is not None
        start_building_runner(platform)
        first = wait_for_build(platform, first_id)
        if first.status != BuildStatus.READY.value:
            raise RuntimeError(f"the first build failed: {first.error}")
        print(f"build 1 (not measured): {first.digest}")
        cached_docker_build(client, directory, baseline_tag, args.registry)  # warm the cache
        ours, raw = [], []
        for round_ in range(args.rounds):
            raw.append(cached_docker_build(client, directory, baseline_tag, args.registry))
            seconds, build = rebuild(platform, task_id)
            ours.append(seconds)
            same = "same digest" if build.digest == first.digest else "NEW digest"
            print(
                f"round {round_ + 1}: rebuild {seconds:.3f}s ({same}: {build.digest}), "
                f"cached docker build {raw[-1]:.3f}s"
            )
        print(
            f"median: rebuild {statistics.median(ours) * 1000:.0f} ms, "
            f"cached docker build {statistics.median(raw) * 1000:.0f} ms"
        )
        pushed = f"push to {args.registry} in both" if args.registry else "no push in either"
        report(
            "rebuild of an unchanged task",
            statistics.median(ours),
            statistics.median(raw),
            1.10,
            f"median of {args.rounds}; cached docker build of the same context; {pushed}",
        )
    finally:
        platform.stop()
        remove_images(client, [f"craton-bench/{platform.project_id[:8]}-*", baseline_tag])
        client.close()
    return 0


def remove_images(client: docker.APIClient, references: list[str]) -> None:
    """Untag this run's images (here and as pushed): those no tag holds any more go,
    the build cache they come from stays."""
    for reference in references:
        for pattern in (reference, f"*/{reference}"):
            for image in client.images(filters={"reference": pattern}):
                for tag in image.get("RepoTags") or []:
                    with contextlib.suppress(docker.errors.APIError):
                        client.remove_image(tag)


if __name__ == "__main__":
    raise SystemExit(main())
