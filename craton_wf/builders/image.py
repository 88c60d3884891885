"""Building a task's image with the Docker engine, output streamed line by line.

The low-level ``APIClient.build`` is used because it streams the engine's
JSON messages as they come: ``stream`` chunks become log lines (ANSI colours
and trailing newlines removed), ``errorDetail`` ends the build with its
message, ``aux.ID`` names the image. Base images are never pulled: tasks
build ``FROM`` images the platform made or loaded itself. With a registry
configured, the image is then pushed there and known by its digest.

The timeout is both the read timeout of the HTTP stream (no output for that
long ends the build) and a deadline checked at every line; dropping the
connection makes the engine cancel the build.

An unchanged build is not run again: every image is labelled with its build
key (:mod:`craton_wf.builders.build_key`: context files, Dockerfile, base
image ids, labels), and a build whose key an image on the engine already
carries tags that image instead of calling ``docker build`` at all. A rebuild
of an unchanged task thus yields the same image id (and, pushed again, the
same registry digest), which is what an approval names. Even a fully cached
``docker build`` would not: the platform's labels are committed onto the
built image, and a commit makes a new image id every time.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker
import docker.errors
import requests
import urllib3.exceptions

from craton_wf.builders.build_key import BUILD_KEY_LABEL, BUILT_AS_LABEL, build_inputs
from craton_wf.errors import BuildError, truncate_message

if TYPE_CHECKING:
    from craton_wf.settings import Settings

MANAGED_LABEL = "craton.managed"

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-_]")
_SUCCESS_LINE = re.compile(r"^Successfully built ([0-9a-f]+)$")
_STEP_LINE = re.compile(r"^Step \d+/\d+ : (\w+)\s+(?:--\S+\s+)*(\S*)")
_TRANSPORT_ERRORS = (requests.exceptions.RequestException, urllib3.exceptions.HTTPError)


@dataclass(frozen=True)
class BuiltImage:
    image: str  # the tag it was built as
    image_id: str  # sha256:...
    digest: str  # the repository digest once pushed, else the image id


@dataclass(frozen=True)
class PushedImage:
    reference: str  # registry/repository@sha256:..., what runs use
    tag: str  # registry/repository:tag
    digest: str  # sha256:..., the manifest digest the registry answered


def repository_and_tag(reference: str) -> tuple[str, str]:
    """``registry:5000/team/task:3`` -> (``registry:5000/team/task``, ``3``); tag ``latest``
    when there is none (a colon followed by a path is a registry's port)."""
    repository, _, tag = reference.rpartition(":")
    if not repository or "/" in tag:
        return reference, "latest"
    return repository, tag


def _docker_message(exc: Exception) -> str:
    if isinstance(exc, docker.errors.APIError):
        return truncate_message(f"{exc.status_code}: {exc.explanation or exc}")
    return truncate_message(str(exc) or type(exc).__name__)


def clean_build_output(text: str) -> list[str]:
    """The non-empty lines of one ``stream`` chunk, without colours or line ends."""
    text = _ANSI_ESCAPE.sub("", text)
    return [line.rstrip() for line in re.split(r"\r\n|\r|\n", text) if line.strip()]


def _status_line(chunk: dict[str, Any]) -> str | None:
    """A ``status`` message worth logging (progress bars are not)."""
    if "status" not in chunk or "progressDetail" in chunk and chunk.get("progress"):
        return None
    return " ".join(str(part) for part in (chunk.get("id"), chunk["status"]) if part)


def _build_failure(
    chunk: dict[str, Any], base_image: str | None, on_log: Callable[[str], None]
) -> str:
    """The engine's error message, logged; naming the base image when FROM failed."""
    message = (chunk.get("errorDetail") or {}).get("message") or chunk.get("error")
    message = truncate_message(_ANSI_ESCAPE.sub("", str(message)))
    on_log(f"ERROR: {message}")
    if base_image:
        # The engine tries the registry for a missing base and reports only that.
        message = f"base image {base_image} is not available locally: {message}"
    return message


class ImageBuilder:
    """Builds images on one Docker engine; the client is made on first use."""

    def __init__(self, base_url: str | None = None, *, client: docker.DockerClient | None = None):
        self.base_url = base_url
        self._client = client
        self._client_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> ImageBuilder:
        return cls(settings.docker_base_url)

    @property
    def client(self) -> docker.DockerClient:
        with self._client_lock:
            if self._client is None:
                try:
                    self._client = (
                        docker.DockerClient(base_url=self.base_url)
                        if self.base_url
                        else docker.from_env()
                    )
                except docker.errors.DockerException as exc:
                    where = self.base_url or "DOCKER_HOST or the local socket"
                    raise BuildError(
                        f"cannot reach the Docker engine at {where}: {_docker_message(exc)}"
                    ) from exc
            return self._client

    def ping(self) -> None:
        """Raise BuildError unless the engine that builds task images answers."""
        where = self.base_url or "DOCKER_HOST or the local socket"
        try:
            self.client.ping()
        except BuildError as exc:  # no client could be made
            reason = exc.__cause__ if isinstance(exc.__cause__, Exception) else exc
            raise BuildError(
                f"cannot reach the Docker engine that builds task images at {where}: "
                f"{_docker_message(reason)}"
            ) from exc
        except docker.errors.DockerException as exc:
            raise BuildError(
                f"cannot reach the Docker engine that builds task images at {where}: "
                f"{_docker_message(exc)}"
            ) from exc

    def build(
        self,
        context: Path,
        dockerfile: str,
        tag: str,
        labels: dict[str, str],
        on_log: Callable[[str], None],
        timeout: int,
    ) -> BuiltImage:
        """Build ``context`` as ``tag``, calling ``on_log`` with every output line.

        When an image with this build's key is on the engine, it is tagged
        ``tag`` and returned, with one line in the log saying so; nothing is
        built. Otherwise the platform's labels are not passed to the build:
        the legacy builder appends one ``LABEL`` step per label, each an
        intermediate container in the task's build log. The image is built
        untagged, then labelled (the build key among the labels) and tagged
        at once by committing a never-started container of it with one
        ``LABEL`` change (no new layer; an image with neither CMD nor
        ENTRYPOINT gets ``CMD ["true"]``, which runs never use: they start the
        task's command).
        """
        key = self._build_key(context, dockerfile, labels, on_log)
        if key and (reused := self._reuse(key, tag, on_log)):
            return reused
        image_id = self._docker_build(context, dockerfile, tag, on_log, timeout)
        image_labels = {**labels, MANAGED_LABEL: "true", BUILT_AS_LABEL: tag}
        if key:
            image_labels[BUILD_KEY_LABEL] = key
        self._label(image_id, tag, image_labels)
        return self._built(tag, image_id)

    def _build_key(
        self, context: Path, dockerfile: str, labels: dict[str, str], on_log: Callable[[str], None]
    ) -> str | None:
        """The build's key; None (said in the log) when a base image is not on the
        engine or is named only when the build runs."""
        try:
            inputs = build_inputs(context, dockerfile, labels, self._local_image_id)
        except OSError as exc:
            reason = truncate_message(str(exc))
            raise BuildError(f"could not read the build context: {reason}") from exc
        if inputs is None:
            on_log("no earlier image can be reused: a base image is missing or named at build time")
            return None
        return inputs.key()

    def _local_image_id(self, reference: str) -> str | None:
        try:
            return str(self.client.api.inspect_image(reference)["Id"])
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.DockerException as exc:
            raise BuildError(f"could not inspect {reference}: {_docker_message(exc)}") from exc

    def _reuse(self, key: str, tag: str, on_log: Callable[[str], None]) -> BuiltImage | None:
        """Tag the newest image carrying ``key`` as ``tag``; None when there is none."""
        api = self.client.api
        filters = {"label": [f"{MANAGED_LABEL}=true", f"{BUILD_KEY_LABEL}={key}"]}
        try:
            found = api.images(filters=filters)
            if not found:
                return None
            image = max(found, key=lambda summary: summary.get("Created") or 0)
            api.tag(image["Id"], *repository_and_tag(tag))
        except docker.errors.ImageNotFound:
            return None  # removed since it was listed: build it again
        except docker.errors.DockerException as exc:
            raise BuildError(f"could not reuse an image for {tag}: {_docker_message(exc)}") from exc
        made_by = (image.get("Labels") or {}).get(BUILT_AS_LABEL) or "an earlier build"
        on_log(
            f"reused image {image['Id']} built as {made_by}: "
            "source, Dockerfile and base images unchanged"
        )
        return self._built(tag, image["Id"])

    def _docker_build(
        self,
        context: Path,
        dockerfile: str,
        tag: str,
        on_log: Callable[[str], None],
        timeout: int,
    ) -> str:
        """Run ``docker build`` of ``context``, untagged; the id of the image it made."""
        try:
            chunks = self.client.api.build(
                path=str(context),
                dockerfile=dockerfile,
                rm=True,
                forcerm=True,
                decode=True,
                pull=False,
                timeout=timeout,
            )
            image_id = self._follow(chunks, on_log, deadline=time.monotonic() + timeout)
        except docker.errors.DockerException as exc:
            raise BuildError(f"docker build failed: {_docker_message(exc)}") from exc
        except _TRANSPORT_ERRORS as exc:
            reason = truncate_message(str(exc))
            raise BuildError(
                f"docker build of {tag} failed or timed out after {timeout}s: {reason}"
            ) from exc
        if not image_id:
            raise BuildError(f"the build of {tag} ended without an error but named no image")
        return image_id

    def _label(self, image_id: str, tag: str, labels: dict[str, str]) -> None:
        """Commit ``image_id`` as ``tag`` with ``labels`` added, without a build step."""
        api = self.client.api
        repository, version = repository_and_tag(tag)
        change = "LABEL " + " ".join(f"{json.dumps(k)}={json.dumps(v)}" for k, v in labels.items())
        container_id: str | None = None
        try:
            config = api.inspect_image(image_id).get("Config") or {}
            command = None if config.get("Cmd") or config.get("Entrypoint") else ["true"]
            container_id = api.create_container(image_id, command=command)["Id"]
            api.commit(container_id, repository=repository, tag=version, changes=[change])
        except docker.errors.DockerException as exc:
            raise BuildError(f"labelling the image {tag} failed: {_docker_message(exc)}") from exc
        finally:
            if container_id:
                # never started; if the engine refuses now, nothing runs in it
                with contextlib.suppress(docker.errors.DockerException):
                    api.remove_container(container_id, force=True)

    def _follow(
        self, chunks: Iterator[dict[str, Any]], on_log: Callable[[str], None], deadline: float
    ) -> str | None:
        """Report each chunk's lines; the image id the engine announced, if any."""
        image_id: str | None = None
        base_image: str | None = None  # set while a FROM step runs
        for chunk in chunks:
            if "errorDetail" in chunk or "error" in chunk:
                raise BuildError(_build_failure(chunk, base_image, on_log))
            for line in clean_build_output(str(chunk.get("stream", ""))):
                on_log(line)
                if step := _STEP_LINE.match(line):
                    base_image = step.group(2) if step.group(1).upper() == "FROM" else None
                if match := _SUCCESS_LINE.match(line):
                    image_id = image_id or match.group(1)
            if status := _status_line(chunk):
                on_log(status)
            if aux_id := (chunk.get("aux") or {}).get("ID"):
                image_id = aux_id
            if time.monotonic() > deadline:
                raise BuildError("the build took longer than its timeout and was abandoned")
        return image_id

    def _built(self, tag: str, image_id: str | None) -> BuiltImage:
        try:
            attrs = self.client.api.inspect_image(tag)
        except docker.errors.ImageNotFound as exc:
            raise BuildError(
                f"the build ended without an error but left no image {tag} "
                f"(last image id seen: {image_id})"
            ) from exc
        except docker.errors.DockerException as exc:
            raise BuildError(f"could not inspect the built image: {_docker_message(exc)}") from exc
        repo_digests = attrs.get("RepoDigests") or []
        digest = repo_digests[0].split("@", 1)[-1] if repo_digests else attrs["Id"]
        return BuiltImage(image=tag, image_id=attrs["Id"], digest=digest)

    def push(
        self,
        image: str,
        registry: str,
        on_log: Callable[[str], None],
        timeout: int,
        auth: dict[str, str] | None = None,
    ) -> PushedImage:
        """Tag ``image`` into ``registry`` and push it; the reference pinned by digest.

        The engine reports a push as a stream of JSON messages: per-layer
        progress (not logged), one status line naming the digest, an ``aux``
        message with ``Digest``, or ``errorDetail`` when the push failed.
        """
        repository, tag = repository_and_tag(image)
        remote = f"{registry.rstrip('/')}/{repository}"
        on_log(f"pushing {remote}:{tag}")
        deadline = time.monotonic() + timeout
        digest: str | None = None
        try:
            self.client.api.tag(image, remote, tag)
            chunks = self.client.api.push(
                remote, tag=tag, stream=True, decode=True, auth_config=auth
            )
            for chunk in chunks:
                if "errorDetail" in chunk or "error" in chunk:
                    message = (chunk.get("errorDetail") or {}).get("message") or chunk.get("error")
                    message = truncate_message(_ANSI_ESCAPE.sub("", str(message)))
                    on_log(f"ERROR: {message}")
                    raise BuildError(f"pushing {remote}:{tag} failed: {message}")
                if status := _status_line(chunk):
                    on_log(status)
                if aux_digest := (chunk.get("aux") or {}).get("Digest"):
                    digest = aux_digest
                if time.monotonic() > deadline:
                    raise BuildError(f"pushing {remote}:{tag} took longer than {timeout}s")
        except docker.errors.DockerException as exc:
            raise BuildError(f"pushing {remote}:{tag} failed: {_docker_message(exc)}") from exc
        except _TRANSPORT_ERRORS as exc:
            reason = truncate_message(str(exc))
            raise BuildError(f"pushing {remote}:{tag} failed: {reason}") from exc
        if not digest:
            raise BuildError(f"the registry accepted {remote}:{tag} but reported no digest")
        return PushedImage(reference=f"{remote}@{digest}", tag=f"{remote}:{tag}", digest=digest)

    def remove_image(self, ref: str) -> None:
        """Untag and delete ``ref``; no error if it does not exist."""
        try:
            self.client.api.remove_image(ref, force=True)
        except docker.errors.ImageNotFound:
            return
        except docker.errors.NotFound:
            return
        except docker.errors.DockerException as exc:
            raise BuildError(f"could not remove image {ref}: {_docker_message(exc)}") from exc

    def close(self) -> None:
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None
