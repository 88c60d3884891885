"""Building task images on the real engine, and fetching task sources with real git."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import git
import pytest

from craton_wf.builders.image import BuiltImage, ImageBuilder
from craton_wf.builders.source import fetch_git, resolve_context
from craton_wf.domain.sources import GitSourcePolicy
from craton_wf.errors import BuildError, SourceError
from craton_wf.executors.base import ContainerSpec
from craton_wf.executors.docker import DockerExecutor

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]

AUTHOR = git.Actor("Craton Test", "test@example.invalid")
# The repositories of these tests are local: file:// is allowed for them only.
LOCAL = GitSourcePolicy(allow_local=True)


@pytest.fixture
def builder() -> Iterator[ImageBuilder]:
    builder = ImageBuilder()
    yield builder
    builder.close()


@pytest.fixture
def unique_tag(unique_name: Callable[[str], str]) -> Callable[[], str]:
    return lambda: f"craton-test/{unique_name('task')}:1"


def write_task(directory: Path, base_image: str, run: str = "echo building-the-task") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "hello.sh").write_text('echo "hello from the task, payload=$1"\n')
    (directory / "Dockerfile").write_text(
        f"FROM {base_image}\n"
        "COPY hello.sh /craton/hello.sh\n"
        f"RUN {run}\n"
        'CMD ["sh", "/craton/hello.sh", "{}"]\n'
    )
    return directory


def build(
    builder: ImageBuilder, context: Path, tag: str, labels: dict[str, str]
) -> tuple[BuiltImage, list[str]]:
    lines: list[str] = []
    built = builder.build(context, "Dockerfile", tag, labels, on_log=lines.append, timeout=120)
    return built, lines


def test_a_task_directory_builds_and_runs(
    builder: ImageBuilder,
    busybox_image: str,
    tmp_path: Path,
    unique_tag: Callable[[], str],
    unique_name: Callable[[str], str],
    test_labels: dict[str, str],
    docker_client: docker.DockerClient,
) -> None:
    marker = unique_name("building-the-task")  # unique, so the RUN step is never cached
    context = write_task(tmp_path / "task", busybox_image, run=f"echo {marker}")
    tag = unique_tag()

    built, lines = build(builder, context, tag, {**test_labels, "craton.task": "hello"})

    assert built.image == tag
    assert built.image_id.startswith("sha256:")
    assert built.digest == built.image_id  # not pushed: the image id
    # the Dockerfile's four steps only: the platform's labels add none
    assert any(line == "Step 1/4 : FROM craton/busybox:latest" for line in lines)
    assert not any(re.match(r"Step \d+/\d+ : LABEL", line) for line in lines)
    assert marker in lines
    assert all(line == line.rstrip() and "\x1b" not in line for line in lines)
    image = docker_client.images.get(tag)
    assert image.id == built.image_id
    assert image.labels["craton.task"] == "hello"
    assert image.labels["craton.managed"] == "true"

    executor = DockerExecutor()
    spec = ContainerSpec(
        name=unique_name("built"),
        image=tag,
        command=["sh", "/craton/hello.sh", '{"host": "h1"}'],
        labels=test_labels,
    )
    handle = executor.create(spec)
    try:
        executor.start(handle)
        output = [line.text for line in executor.logs(handle)]
        assert executor.wait(handle) == 0
    finally:
        executor.remove(handle)
        executor.close()
    assert output == ['hello from the task, payload={"host": "h1"}']


def test_a_failing_build_raises_with_the_engine_message(
    builder: ImageBuilder,
    busybox_image: str,
    tmp_path: Path,
    unique_tag: Callable[[], str],
    test_labels: dict[str, str],
    docker_client: docker.DockerClient,
) -> None:
    context = write_task(tmp_path / "task", busybox_image, run="echo about-to-fail && exit 1")
    tag = unique_tag()
    lines: list[str] = []

    with pytest.raises(BuildError) as caught:
        builder.build(context, "Dockerfile", tag, test_labels, on_log=lines.append, timeout=120)

    assert "returned a non-zero code: 1" in caught.value.message
    assert "about-to-fail" in lines
    assert lines[-1] == f"ERROR: {caught.value.message}"
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(tag)


def test_a_missing_base_image_is_not_pulled(
    builder: ImageBuilder, tmp_path: Path, unique_tag: Callable[[], str]
) -> None:
    context = write_task(tmp_path / "task", "craton-test/no-such-base:1")

    with pytest.raises(BuildError, match="base image craton-test/no-such-base:1 is not available"):
        build(builder, context, unique_tag(), {})


def test_remove_image_is_quiet_when_missing(
    builder: ImageBuilder,
    busybox_image: str,
    tmp_path: Path,
    unique_tag: Callable[[], str],
    test_labels: dict[str, str],
    docker_client: docker.DockerClient,
) -> None:
    tag = unique_tag()
    build(builder, write_task(tmp_path / "task", busybox_image), tag, test_labels)

    builder.remove_image(tag)
    builder.remove_image(tag)

    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(tag)


# --- reusing the image of an unchanged build ------------------------------------


@pytest.fixture
def docker_builds(builder: ImageBuilder, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The contexts ``builder`` ran ``docker build`` on, in order."""
    calls: list[str] = []
    real_build = builder.client.api.build

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(str(kwargs.get("path")))
        return real_build(*args, **kwargs)

    monkeypatch.setattr(builder.client.api, "build", counted)
    return calls


def make_base_image(
    client: docker.DockerClient, reference: str, variant: str, test_labels: dict[str, str]
) -> str:
    """Commit busybox as ``reference`` with a label that makes each variant another image."""
    repository, _, tag = reference.rpartition(":")
    labels = {**test_labels, "craton.variant": variant}
    change = "LABEL " + " ".join(f'"{name}"="{value}"' for name, value in labels.items())
    container = client.api.create_container("craton/busybox:latest", command=["true"])
    try:
        image = client.api.commit(container["Id"], repository=repository, tag=tag, changes=[change])
    finally:
        client.api.remove_container(container["Id"], force=True)
    return str(image["Id"])


def test_an_unchanged_rebuild_reuses_the_image_without_building(
    builder: ImageBuilder,
    busybox_image: str,
    tmp_path: Path,
    unique_name: Callable[[str], str],
    test_labels: dict[str, str],
    docker_client: docker.DockerClient,
    docker_builds: list[str],
) -> None:
    repository = f"craton-test/{unique_name('task')}"
    labels = {**test_labels, "craton.task": repository, "craton.commit": "sha256:" + "1" * 64}
    one = write_task(tmp_path / "one", busybox_image)
    first, _ = build(builder, one, f"{repository}:1", {**labels, "craton.build": "31"})
    # The same source unpacked again for the next build: other directory, other times.
    again = write_task(tmp_path / "two", busybox_image)
    os.utime(again / "hello.sh", (0, 0))

    second, lines = build(builder, again, f"{repository}:2", {**labels, "craton.build": "32"})

    assert second.image_id == first.image_id
    assert second.digest == first.digest  # what an approval names
    assert docker_builds == [str(one)]  # no docker build for the second
    assert lines == [
        f"reused image {first.image_id} built as {repository}:1: "
        "source, Dockerfile and base images unchanged"
    ]
    image = docker_client.images.get(f"{repository}:2")
    assert image.id == first.image_id
    assert set(image.tags) == {f"{repository}:1", f"{repository}:2"}
    assert image.labels["craton.build"] == "31"  # the build that made it
    assert image.labels["craton.build-key"].startswith("sha256:")


@pytest.mark.parametrize("change", ["source", "Dockerfile", "commit"])
def test_a_changed_source_dockerfile_or_commit_is_built_again(
    builder: ImageBuilder,
    busybox_image: str,
    tmp_path: Path,
    unique_name: Callable[[str], str],
    test_labels: dict[str, str],
    docker_builds: list[str],
    change: str,
) -> None:
    repository = f"craton-test/{unique_name('task')}"
    context = write_task(tmp_path / "task", busybox_image)
    # Another task's image of the same files is not this task's: the task is in the key.
    labels = {**test_labels, "craton.task": repository, "craton.commit": "sha256:" + "1" * 64}
    first, _ = build(builder, context, f"{repository}:1", labels)
    if change == "source":
        (context / "hello.sh").write_text('echo "changed, payload=$1"\n')
    elif change == "Dockerfile":
        with (context / "Dockerfile").open("a") as dockerfile:
            dockerfile.write("ENV CHANGED=1\n")
    else:
        labels["craton.commit"] = "sha256:" + "2" * 64

    second, lines = build(builder, context, f"{repository}:2", labels)

    assert second.image_id != first.image_id
    assert len(docker_builds) == 2
    assert not any(line.startswith("reused image") for line in lines)


def test_a_base_image_tagged_anew_is_built_again_then_reused(
    builder: ImageBuilder,
    busybox_image: str,
    tmp_path: Path,
    unique_name: Callable[[str], str],
    test_labels: dict[str, str],
    docker_client: docker.DockerClient,
    docker_builds: list[str],
) -> None:
    base = f"craton-test/{unique_name('base')}:1"
    make_base_image(docker_client, base, "1", test_labels)
    context = write_task(tmp_path / "task", base)
    repository = f"craton-test/{unique_name('task')}"
    first, _ = build(builder, context, f"{repository}:1", test_labels)

    make_base_image(docker_client, base, "2", test_labels)  # same name, another image
    second, lines = build(builder, context, f"{repository}:2", test_labels)
    third, again = build(builder, context, f"{repository}:3", test_labels)

    assert second.image_id != first.image_id
    assert len(docker_builds) == 2
    assert f"Step 1/4 : FROM {base}" in lines
    assert third.image_id == second.image_id
    assert again == [
        f"reused image {second.image_id} built as {repository}:2: "
        "source, Dockerfile and base images unchanged"
    ]


# --- git -------------------------------------------------------------------------


def commit_file(repo: git.Repo, name: str, text: str, message: str) -> str:
    path = Path(repo.working_tree_dir) / name  # type: ignore[arg-type]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    repo.index.add([name])
    return repo.index.commit(message, author=AUTHOR, committer=AUTHOR).hexsha


@pytest.fixture
def task_repo(tmp_path: Path) -> git.Repo:
    repo = git.Repo.init(tmp_path / "origin", initial_branch="main")
    commit_file(repo, "Dockerfile", "FROM craton/busybox:latest\n", "first")
    return repo


def test_fetch_git_checks_out_the_default_branch_and_returns_its_commit(
    task_repo: git.Repo, tmp_path: Path
) -> None:
    url = f"file://{task_repo.working_tree_dir}"
    first = task_repo.head.commit.hexsha

    assert fetch_git(url, None, tmp_path / "one", timeout=60, policy=LOCAL) == first
    assert (tmp_path / "one" / "Dockerfile").read_text() == "FROM craton/busybox:latest\n"

    second = commit_file(task_repo, "Dockerfile", "FROM craton/busybox:latest\nRUN true\n", "2")
    assert second != first
    assert fetch_git(url, "main", tmp_path / "two", timeout=60, policy=LOCAL) == second
    assert "RUN true" in (tmp_path / "two" / "Dockerfile").read_text()


def test_fetch_git_by_tag_and_by_commit(task_repo: git.Repo, tmp_path: Path) -> None:
    url = f"file://{task_repo.working_tree_dir}"
    first = task_repo.head.commit.hexsha
    task_repo.create_tag("v1")
    commit_file(task_repo, "Dockerfile", "FROM craton/busybox:latest\nRUN true\n", "2")

    assert fetch_git(url, "v1", tmp_path / "tag", timeout=60, policy=LOCAL) == first
    assert fetch_git(url, first, tmp_path / "sha", timeout=60, policy=LOCAL) == first
    assert fetch_git(url, first[:10], tmp_path / "short", timeout=60, policy=LOCAL) == first
    assert "RUN" not in (tmp_path / "short" / "Dockerfile").read_text()


def test_fetch_git_then_resolve_a_subdirectory_context(task_repo: git.Repo, tmp_path: Path) -> None:
    commit_file(task_repo, "tasks/audit/Dockerfile", "FROM craton/busybox:latest\n", "audit")

    fetch_git(
        f"file://{task_repo.working_tree_dir}", None, tmp_path / "src", timeout=60, policy=LOCAL
    )

    context, dockerfile = resolve_context(tmp_path / "src", "tasks/audit")
    assert context == (tmp_path / "src" / "tasks" / "audit").resolve()
    assert dockerfile == "Dockerfile"


def test_submodules_are_not_fetched(task_repo: git.Repo, tmp_path: Path) -> None:
    other = git.Repo.init(tmp_path / "other", initial_branch="main")
    secret = commit_file(other, "secret.txt", "should not be fetched\n", "other")
    (Path(task_repo.working_tree_dir) / ".gitmodules").write_text(  # type: ignore[arg-type]
        f'[submodule "sub"]\n\tpath = sub\n\turl = file://{other.working_tree_dir}\n'
    )
    task_repo.index.add([".gitmodules"])
    task_repo.index.add(
        [git.BaseIndexEntry((0o160000, bytes.fromhex(secret), 0, "sub"))]  # a gitlink
    )
    task_repo.index.commit("with a submodule", author=AUTHOR, committer=AUTHOR)

    fetch_git(
        f"file://{task_repo.working_tree_dir}", None, tmp_path / "src", timeout=60, policy=LOCAL
    )

    assert not (tmp_path / "src" / "sub" / "secret.txt").exists()


@pytest.mark.parametrize("ref", [None, "no-such-branch", "0123456789abcdef"])
def test_fetch_git_failures_are_source_errors(
    task_repo: git.Repo, tmp_path: Path, ref: str | None
) -> None:
    url = f"file://{task_repo.working_tree_dir}" if ref else f"file://{tmp_path}/missing"

    with pytest.raises(SourceError, match="could not clone") as caught:
        fetch_git(url, ref, tmp_path / "src", timeout=60, policy=LOCAL)

    assert url in caught.value.message


def test_fetch_git_refuses_a_non_empty_destination(task_repo: git.Repo, tmp_path: Path) -> None:
    dest = tmp_path / "src"
    dest.mkdir()
    (dest / "something").write_text("x")

    with pytest.raises(SourceError, match="not empty"):
        fetch_git(f"file://{task_repo.working_tree_dir}", None, dest, timeout=60, policy=LOCAL)
