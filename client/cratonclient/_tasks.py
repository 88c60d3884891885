"""Tasks: create from a git URL or a local directory, builds and build logs.

A task made from a directory is sent as ``multipart/form-data``: a ``spec``
part holding the same JSON a git task is created with, and an ``archive``
part holding the directory packed by :func:`cratonclient._archive.pack_directory`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._archive import pack_directory
from ._managers import Id, Manager, _drop_none
from ._resource import Resource
from ._sse import follow_items

#: A build that reached one of these statuses will not change any more.
BUILD_FINISHED = frozenset({"READY", "BUILD FAILED"})


def _multipart(spec: dict[str, Any] | None, archive: bytes) -> dict[str, Any]:
    files: dict[str, Any] = {"archive": ("task.tar.gz", archive, "application/gzip")}
    if spec is not None:
        files["spec"] = (None, json.dumps(spec), "application/json")
    return files


class TaskManager(Manager):
    path = "/v1/tasks"
    key = "tasks"
    noun = "task"

    def create(self, **fields: Any) -> Resource:
        """A task built from a git repository.

        Fields: ``name``, ``location`` (git URL), ``command`` (list of
        strings, or one string of shell words), and optionally ``ref``,
        ``subdir``, ``dockerfile``, ``description``, ``kind``, ``public``,
        ``restricted_to``, ``needs_network``.
        """
        return super().create(**fields)

    def create_from_directory(self, path: str | os.PathLike[str], **spec: Any) -> Resource:
        """A task built from the local directory ``path``, uploaded as a ``.tar.gz``.

        ``spec`` takes the same fields as :meth:`create`; ``location``
        defaults to the directory's absolute path (the server only records it).
        """
        directory = Path(path).resolve()
        archive = pack_directory(directory)
        body = _drop_none({"location": str(directory), **spec})
        return Resource(self._session.post_json(self.path, files=_multipart(body, archive)))

    # -- approvals ------------------------------------------------------------

    def _decide(self, id: Id, decision: str, **fields: Any) -> Resource:
        url = self._url(self.resolve_id(id), decision)
        return Resource(self._session.post_json(url, _drop_none(fields)))

    def approve(
        self, id: Id, build: int | None = None, digest: str | None = None, reason: str | None = None
    ) -> Resource:
        """Approve a READY build (default: the current one); ``digest`` must then match."""
        return self._decide(id, "approve", build=build, digest=digest, reason=reason)

    def reject(self, id: Id, build: int | None = None, reason: str | None = None) -> Resource:
        return self._decide(id, "reject", build=build, reason=reason)

    def revoke(self, id: Id, build: int | None = None, reason: str | None = None) -> Resource:
        """Withdraw the approval of a build: jobs can no longer run it."""
        return self._decide(id, "revoke", build=build, reason=reason)

    # -- builds ---------------------------------------------------------------

    def build(
        self, id: Id, ref: str | None = None, directory: str | os.PathLike[str] | None = None
    ) -> Resource:
        """Queue a new build. Git: fetch ``ref`` (or the task's) again.
        Upload: ``directory``, if given, is packed and replaces the stored source.
        """
        url = self._url(id, "builds")
        if directory is not None:
            spec = {"ref": ref} if ref else None
            files = _multipart(spec, pack_directory(directory))
            return Resource(self._session.post_json(url, files=files))
        return Resource(self._session.post_json(url, {"ref": ref} if ref else None))

    def builds(self, id: Id) -> list[Resource]:
        return [Resource(b) for b in self._session.iter_items(self._url(id, "builds"), "builds")]

    def get_build(self, id: Id, build_id: Id = "latest") -> Resource:
        return Resource(self._session.get_json(self._url(id, "builds", build_id)))

    def build_logs(
        self, id: Id, build_id: Id = "latest", after: int = 0, follow: bool = False
    ) -> Iterator[Resource]:
        """The build's log lines (``{"seq", "ts", "line"}``) after sequence number ``after``.

        With ``follow`` the server streams lines as they are written, and the
        iterator ends when the build is finished.
        """
        url = self._url(id, "builds", build_id, "logs")
        if follow:
            stream = self._session.stream_events(
                url, {"after": after, "follow": True}, last_event_id=after or None
            )
            yield from map(Resource, follow_items(stream))
            return
        while True:
            body = self._session.get_json(url, {"after": after})
            logs = body.get("logs") or []
            for item in logs:
                yield Resource(item)
            next_after = body.get("next_after")
            if not logs or next_after is None or next_after == after:
                return
            after = next_after
