"""The fake cluster's state, its Job controller and its kubelet."""

from __future__ import annotations

import base64
import copy
import itertools
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from tests.kubefake.protocol import (
    ConnectionDropped,
    grace_of,
    job_condition,
    not_found,
    precondition_failed,
    rfc3339,
    rfc3339_nano,
    utcnow,
)
from tests.kubefake.shell import Killed, Process, run_shell

Program = Callable[[Process], int]
TICK_SECONDS = 0.02
LOG_ENTRY_BYTES = 16 * 1024  # the runtime splits longer lines into partial entries
# Entries a log stream reads from its file at a time: a stream whose reader is
# slow falls behind the file, as the kubelet's does, blocked on its writes.
LOG_CHUNK_ENTRIES = 256
_NAME_LETTERS = "bcdfghjklmnpqrstvwxz2456789"


class FakeContainer:
    """One running container: the :class:`Process` its program sees.

    Its log is a list of files, as the kubelet keeps it: ``log`` holds every
    entry written, ``files`` where each file begins in it, the last one being
    the current file. With ``log_max_bytes`` (the kubelet's
    ``containerLogMaxSize``, counted in output bytes: the entries' stamps and
    stream names are left out) an entry that would make the current file
    larger begins a new one, and the files before it are rotated away: a read
    opened from then on sees the current file only. Their entries are kept,
    as the open file of a stream still reading one keeps it on disk.
    """

    def __init__(
        self,
        cluster: Controller,
        args: list[str],
        env: dict[str, str],
        user: int,
        log_max_bytes: int | None = None,
    ):
        self.cluster = cluster
        self.args = args
        self.env = env
        self.user = user
        self.log_max_bytes = log_max_bytes
        self.trap: str | None = None
        self.log: list[tuple[int, bytes]] = []  # (epoch ns, entry) as the runtime keeps them
        self.files: list[int] = [0]  # where each log file begins in ``log``; the last is current
        self.killed = False
        self.finished = False
        self._term = False
        self._file_bytes = 0  # output in the current file

    def write(self, data: bytes) -> None:
        with self.cluster.changed:
            if self.killed:
                raise Killed
            for line in data.splitlines(keepends=True):
                for at in range(0, len(line), LOG_ENTRY_BYTES):
                    self._append(line[at : at + LOG_ENTRY_BYTES])
            self.cluster.changed.notify_all()

    def _append(self, entry: bytes) -> None:
        limit = self.log_max_bytes
        if limit is not None and self._file_bytes and self._file_bytes + len(entry) > limit:
            self.files.append(len(self.log))  # rotated: a new current file
            self._file_bytes = 0
        self.log.append((time.time_ns(), entry))
        self._file_bytes += len(entry)

    def file_end(self, file: int) -> int:
        """Where ``file`` ends in ``log``: the next file's start, or the log's end."""
        return self.files[file + 1] if file + 1 < len(self.files) else len(self.log)

    def sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        with self.cluster.changed:
            while not self.killed and not (self._term and self.trap):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.cluster.changed.wait(remaining)
            if self.killed:
                raise Killed

    def take_term(self) -> bool:
        with self.cluster.changed:
            if self.killed:
                raise Killed
            term, self._term = self._term, False
            return term

    def signal_term(self) -> None:
        self._term = True


@dataclass
class PodRuntime:
    start_at: float  # monotonic time the kubelet starts the container
    container: FakeContainer | None = None
    kill_at: float | None = None


@dataclass
class JobRuntime:
    started_at: float | None = None  # monotonic
    finished_at: float | None = None


class Controller:
    """The objects of the cluster, and what the Job controller and kubelet do to them.

    Every change goes through ``_put`` / ``_drop`` under ``changed``, which
    versions the object, records the watch event and wakes whoever waits.
    """

    def __init__(
        self,
        program: Program = run_shell,
        pod_start_seconds: float = 0.05,
        missing_images: tuple[str, ...] = ("no-such-image",),
        log_max_bytes: int | None = None,
    ) -> None:
        self.program = program
        self.pod_start_seconds = pod_start_seconds
        self.missing_images = missing_images
        self.log_max_bytes = log_max_bytes
        self.created: list[dict[str, Any]] = []  # every Job POSTed, as received
        self.created_secrets: list[dict[str, Any]] = []  # every Secret POSTed, as received
        self.requests: list[tuple[str, str]] = []  # (method, path) of every call
        self.changed = threading.Condition()
        self._objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._events: list[tuple[int, str, str, dict[str, Any]]] = []  # rv, kind, type, object
        self._rv = itertools.count(1000)
        self._last_rv = 999
        self._pods: dict[tuple[str, str], PodRuntime] = {}
        self._jobs: dict[tuple[str, str], JobRuntime] = {}
        self._closing = False
        self._log_stream_cuts: list[bool] = []  # each cut of the open log streams: abrupt?
        self._log_streams_stalled = False

    def cut_log_streams(self, abruptly: bool = False) -> None:
        """End every log stream open now, as a kubelet or API server restarting does:
        as a finished answer, or ``abruptly``, the connection dropped mid-answer."""
        with self.changed:
            self._log_stream_cuts.append(abruptly)
            self.changed.notify_all()

    @contextmanager
    def log_streams_stalled(self) -> Iterator[None]:
        """Log streams (open or opened meanwhile) send nothing until the block ends."""
        with self.changed:
            self._log_streams_stalled = True
        try:
            yield
        finally:
            with self.changed:
                self._log_streams_stalled = False
                self.changed.notify_all()

    def objects(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Copies of the Jobs (``jobs``), pods (``pods``) or Secrets (``secrets``) there are."""
        with self.changed:
            return [
                copy.deepcopy(obj)
                for (k, ns, _), obj in self._objects.items()
                if k == kind and namespace in (None, ns)
            ]

    def _put(self, kind: str, obj: dict[str, Any], event: str = "MODIFIED") -> None:
        meta = obj["metadata"]
        self._last_rv = next(self._rv)
        meta["resourceVersion"] = str(self._last_rv)
        self._objects[(kind, meta["namespace"], meta["name"])] = obj
        self._events.append((self._last_rv, kind, event, copy.deepcopy(obj)))
        self.changed.notify_all()

    def _drop(self, kind: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        if self._objects.pop((kind, meta["namespace"], meta["name"]), None) is None:
            return
        self._last_rv = next(self._rv)
        meta["resourceVersion"] = str(self._last_rv)
        self._events.append((self._last_rv, kind, "DELETED", copy.deepcopy(obj)))
        if kind == "pods":
            self._pods.pop((meta["namespace"], meta["name"]), None)
            self._pod_gone(obj)
        elif kind == "jobs":
            self._jobs.pop((meta["namespace"], meta["name"]), None)
        self.changed.notify_all()

    def _get(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        obj = self._objects.get((kind, namespace, name))
        if obj is None:
            raise not_found(kind, name)
        return obj

    def _owned_pods(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        uid = job["metadata"]["uid"]
        return [
            pod
            for (kind, _, _), pod in list(self._objects.items())
            if kind == "pods"
            and any(ref["uid"] == uid for ref in pod["metadata"].get("ownerReferences", []))
        ]

    def _dependents(self, kind: str, job: dict[str, Any]) -> list[dict[str, Any]]:
        uid = job["metadata"]["uid"]
        return [
            obj
            for (k, _, _), obj in list(self._objects.items())
            if k == kind
            and any(ref["uid"] == uid for ref in obj["metadata"].get("ownerReferences", []))
        ]

    def _collect_garbage(self) -> None:
        """The garbage collector, for Secrets: one whose owners are all gone is deleted."""
        for (kind, namespace, _), obj in list(self._objects.items()):
            refs = obj["metadata"].get("ownerReferences") or []
            if kind != "secrets" or not refs:
                continue
            if not any(
                (owner := self._objects.get(("jobs", namespace, ref["name"]))) is not None
                and owner["metadata"]["uid"] == ref["uid"]
                for ref in refs
            ):
                self._drop("secrets", obj)

    def _environment(
        self, namespace: str, container: dict[str, Any]
    ) -> tuple[dict[str, str], str | None]:
        """The container's variables, ``secretKeyRef`` resolved; or why it cannot start."""
        env: dict[str, str] = {}
        for item in container.get("env") or []:
            ref = (item.get("valueFrom") or {}).get("secretKeyRef")
            if ref is None:
                env[item["name"]] = item.get("value", "")
                continue
            secret = self._objects.get(("secrets", namespace, ref["name"]))
            value = None if secret is None else (secret.get("data") or {}).get(ref["key"])
            if value is not None:
                env[item["name"]] = base64.b64decode(value).decode("utf-8", "replace")
            elif not ref.get("optional"):
                if secret is None:
                    return env, f'secret "{ref["name"]}" not found'
                return env, f"couldn't find key {ref['key']} in Secret {namespace}/{ref['name']}"
        return env, None

    def _owner(self, pod: dict[str, Any]) -> dict[str, Any] | None:
        for ref in pod["metadata"].get("ownerReferences", []):
            job = self._objects.get(("jobs", pod["metadata"]["namespace"], ref["name"]))
            if job is not None and job["metadata"]["uid"] == ref["uid"]:
                return job
        return None

    def _delete_job(self, namespace: str, name: str, options: dict[str, Any]) -> dict[str, Any]:
        job = self._get("jobs", namespace, name)
        uid = job["metadata"]["uid"]
        if (wanted := options.get("preconditions", {}).get("uid")) and wanted != uid:
            raise precondition_failed("jobs", name, wanted, uid)
        policy = options.get("propagationPolicy") or (
            "Orphan" if options.get("orphanDependents", True) else "Background"
        )
        pods = self._owned_pods(job)
        if policy == "Foreground":
            if not job["metadata"].get("deletionTimestamp"):
                job["metadata"]["deletionTimestamp"] = rfc3339(utcnow())
                job["metadata"]["deletionGracePeriodSeconds"] = 0
                job["metadata"]["finalizers"] = ["foregroundDeletion"]
                self._put("jobs", job)
            for pod in pods:
                self._delete_pod(pod, grace_of(pod))
            if not self._owned_pods(job):
                self._drop("jobs", job)
            return copy.deepcopy(job)
        if policy == "Orphan":
            for secret in self._dependents("secrets", job):
                secret["metadata"]["ownerReferences"] = []
                self._put("secrets", secret)
        self._drop("jobs", job)
        for pod in pods:
            if policy == "Orphan":
                pod["metadata"]["ownerReferences"] = []
                self._put("pods", pod)
            else:
                self._delete_pod(pod, grace_of(pod))
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {"name": name, "group": "batch", "kind": "jobs", "uid": uid},
        }

    def _start_job(self, job: dict[str, Any]) -> None:
        meta = job["metadata"]
        self._jobs[(meta["namespace"], meta["name"])].started_at = time.monotonic()
        job["status"]["startTime"] = rfc3339(utcnow())
        self._put("jobs", job)
        self._create_pod(job)

    def _create_pod(self, job: dict[str, Any]) -> None:
        meta, template = job["metadata"], job["spec"]["template"]
        suffix = "".join(random.choice(_NAME_LETTERS) for _ in range(5))
        name = f"{meta['name'][:57]}-{suffix}"
        spec = copy.deepcopy(template["spec"])
        spec["nodeName"] = "fake-node"
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": meta["namespace"],
                "uid": str(uuid.uuid4()),
                "creationTimestamp": rfc3339(utcnow()),
                "labels": dict(template["metadata"].get("labels") or {}),
                "annotations": dict(template["metadata"].get("annotations") or {}),
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": spec,
            "status": {
                "phase": "Pending",
                "conditions": [{"type": "PodScheduled", "status": "True"}],
                "qosClass": "Burstable",
                "startTime": rfc3339(utcnow()),
                "containerStatuses": [
                    {
                        "name": c["name"],
                        "image": c["image"],
                        "imageID": "",
                        "ready": False,
                        "restartCount": 0,
                        "started": False,
                        "state": {"waiting": {"reason": "ContainerCreating"}},
                    }
                    for c in spec["containers"]
                ],
            },
        }
        self._pods[(meta["namespace"], name)] = PodRuntime(
            start_at=time.monotonic() + self.pod_start_seconds
        )
        job["status"]["active"] = job["status"].get("active", 0) + 1
        self._put("jobs", job)
        self._put("pods", pod, "ADDED")

    def _control_loop(self) -> None:
        while True:
            with self.changed:
                if self._closing:
                    return
                self._tick(time.monotonic())
                self.changed.wait(TICK_SECONDS)

    def _tick(self, now: float) -> None:
        for (namespace, name), runtime in list(self._pods.items()):
            pod = self._objects.get(("pods", namespace, name))
            if pod is None:
                continue
            starting = runtime.container is None and now >= runtime.start_at
            if starting and not pod["metadata"].get("deletionTimestamp"):
                self._start_container(pod, runtime)
            if runtime.kill_at is not None and now >= runtime.kill_at:
                self._kill(pod, runtime)
        for (namespace, name), job_runtime in list(self._jobs.items()):
            job = self._objects.get(("jobs", namespace, name))
            if job is not None:
                self._check_job(job, job_runtime, now)
        self._collect_garbage()

    def _check_job(self, job: dict[str, Any], runtime: JobRuntime, now: float) -> None:
        spec, meta = job["spec"], job["metadata"]
        if meta.get("deletionTimestamp"):
            if not self._owned_pods(job):
                self._drop("jobs", job)
            return
        deadline = spec.get("activeDeadlineSeconds")
        if (
            deadline is not None
            and runtime.started_at is not None
            and runtime.finished_at is None
            and now >= runtime.started_at + deadline
        ):
            self._fail_job(
                job, runtime, "DeadlineExceeded", "Job was active longer than specified deadline"
            )
            for pod in self._owned_pods(job):
                self._delete_pod(pod, grace_of(pod))
        ttl = spec.get("ttlSecondsAfterFinished")
        if ttl is not None and runtime.finished_at is not None and now >= runtime.finished_at + ttl:
            self._delete_job(meta["namespace"], meta["name"], {"propagationPolicy": "Background"})

    def _start_container(self, pod: dict[str, Any], runtime: PodRuntime) -> None:
        spec = pod["spec"]
        container = spec["containers"][0]
        status = pod["status"]["containerStatuses"][0]
        if any(image in container["image"] for image in self.missing_images):
            message = f'failed to pull image "{container["image"]}": not found'
            status["state"] = {"waiting": {"reason": "ErrImagePull", "message": message}}
            runtime.start_at = float("inf")
            self._put("pods", pod)
            return
        user = (container.get("securityContext") or {}).get("runAsUser")
        if user is None:
            user = (spec.get("securityContext") or {}).get("runAsUser", 0)
        env, problem = self._environment(pod["metadata"]["namespace"], container)
        if problem is not None:
            status["state"] = {
                "waiting": {"reason": "CreateContainerConfigError", "message": problem}
            }
            runtime.start_at = time.monotonic() + 1.0  # the kubelet tries again
            self._put("pods", pod)
            return
        process = FakeContainer(
            self,
            list(container.get("command") or []) + list(container.get("args") or []),
            env,
            user,
            self.log_max_bytes,
        )
        runtime.container = process
        status.update(
            ready=True,
            started=True,
            imageID=f"fake://{container['image']}",
            containerID=f"containerd://{uuid.uuid4().hex}",
            state={"running": {"startedAt": rfc3339(utcnow())}},
        )
        pod["status"]["phase"] = "Running"
        self._put("pods", pod)
        job = self._owner(pod)
        if job is not None:
            job["status"]["ready"] = 1
            self._put("jobs", job)
        thread = threading.Thread(
            target=self._run_container,
            args=(pod["metadata"]["namespace"], pod["metadata"]["name"], process),
            name=f"kubefake-{pod['metadata']['name']}",
            daemon=True,
        )
        thread.start()

    def _run_container(self, namespace: str, name: str, process: FakeContainer) -> None:
        try:
            code = self.program(process)
        except Killed:
            return
        except Exception as exc:  # a broken program: its container fails, as it would
            process.write(f"fake container: {type(exc).__name__}: {exc}\n".encode())
            code = 128
        with self.changed:
            pod = self._objects.get(("pods", namespace, name))
            if pod is not None and not process.killed:
                self._container_exited(pod, process, code)

    def _kill(self, pod: dict[str, Any], runtime: PodRuntime) -> None:
        runtime.kill_at = None
        if runtime.container is not None and not runtime.container.finished:
            runtime.container.killed = True
            self._container_exited(pod, runtime.container, 137)
        else:
            self._drop("pods", pod)

    def _container_exited(self, pod: dict[str, Any], process: FakeContainer, code: int) -> None:
        if process.finished:
            return
        process.finished = True
        status = pod["status"]["containerStatuses"][0]
        started = status["state"].get("running", {}).get("startedAt", rfc3339(utcnow()))
        status.update(
            ready=False,
            started=False,
            state={
                "terminated": {
                    "exitCode": code,
                    "reason": "Completed" if code == 0 else "Error",
                    "startedAt": started,
                    "finishedAt": rfc3339(utcnow()),
                    "containerID": status.get("containerID", ""),
                }
            },
        )
        pod["status"]["phase"] = "Succeeded" if code == 0 else "Failed"
        self._put("pods", pod)
        job = self._owner(pod)
        if job is not None:
            self._count_pod(job, succeeded=code == 0)
        if pod["metadata"].get("deletionTimestamp"):
            self._drop("pods", pod)

    def _pod_gone(self, pod: dict[str, Any]) -> None:
        """A pod removed before its container ended counts as failed."""
        terminated = pod["status"]["containerStatuses"][0]["state"].get("terminated")
        job = self._owner(pod)
        if terminated is None and job is not None:
            self._count_pod(job, succeeded=False)

    def _count_pod(self, job: dict[str, Any], succeeded: bool) -> None:
        meta, status = job["metadata"], job["status"]
        runtime = self._jobs.get((meta["namespace"], meta["name"]))
        if runtime is None or runtime.finished_at is not None or meta.get("deletionTimestamp"):
            return
        status["active"] = max(status.get("active", 1) - 1, 0)
        status["ready"] = 0
        key = "succeeded" if succeeded else "failed"
        status[key] = status.get(key, 0) + 1
        if succeeded:
            now = rfc3339(utcnow())
            status["completionTime"] = now
            status["conditions"] = [
                job_condition(
                    "SuccessCriteriaMet",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                ),
                job_condition(
                    "Complete", "CompletionsReached", "Reached expected number of succeeded pods"
                ),
            ]
            runtime.finished_at = time.monotonic()
            self._put("jobs", job)
        elif status["failed"] > job["spec"].get("backoffLimit", 6):
            self._fail_job(
                job, runtime, "BackoffLimitExceeded", "Job has reached the specified backoff limit"
            )
        else:
            self._put("jobs", job)
            self._create_pod(job)

    def _fail_job(
        self, job: dict[str, Any], runtime: JobRuntime, reason: str, message: str
    ) -> None:
        runtime.finished_at = time.monotonic()
        status = job["status"]
        status["failed"] = status.get("failed", 0) + status.get("active", 0)
        status["active"] = 0
        status["ready"] = 0
        status["conditions"] = [
            job_condition("FailureTarget", reason, message),
            job_condition("Failed", reason, message),
        ]
        self._put("jobs", job)

    def _delete_pod(self, pod: dict[str, Any], grace: int) -> None:
        meta = pod["metadata"]
        runtime = self._pods.get((meta["namespace"], meta["name"]))
        container = runtime.container if runtime else None
        if runtime is None or container is None or container.finished:
            self._drop("pods", pod)
            return
        kill_at = time.monotonic() + grace
        if runtime.kill_at is not None and runtime.kill_at <= kill_at:
            return  # already going, sooner
        runtime.kill_at = kill_at
        meta["deletionTimestamp"] = rfc3339(utcnow() + timedelta(seconds=grace))
        meta["deletionGracePeriodSeconds"] = grace
        container.signal_term()
        self._put("pods", pod)
        if grace == 0:
            self._kill(pod, runtime)

    def _log_chunks(
        self,
        namespace: str,
        name: str,
        container: FakeContainer,
        follow: bool,
        stamps: bool,
        since_ns: int,
        tail: int | None,
    ) -> Iterator[bytes]:
        """A read of the container's log, as the kubelet serves it.

        The read opens the current file and reads it to its end; following, it
        then waits for more, and once the file it reads was rotated and read
        to its end, it opens the current file, whichever that is by then: the
        files in between (rotated away while it was still reading an older
        one) are skipped, without a trace in the stream.
        """
        with self.changed:
            file = len(container.files) - 1
            sent = container.files[file]
            cuts = len(self._log_stream_cuts)
            if tail is not None:
                log = container.log
                starts = [
                    i for i in range(sent, len(log)) if i == sent or log[i - 1][1].endswith(b"\n")
                ]
                sent = len(log) if tail == 0 else starts[-tail] if tail <= len(starts) else sent
        at_line_start = True
        while True:
            with self.changed:
                if len(self._log_stream_cuts) != cuts:
                    if any(self._log_stream_cuts[cuts:]):
                        raise ConnectionDropped
                    return
                if self._log_streams_stalled:
                    self.changed.wait(0.25)
                    continue
                end = min(container.file_end(file), sent + LOG_CHUNK_ENTRIES)
                entries = container.log[sent:end]
                sent += len(entries)
                rotated = file + 1 < len(container.files)
                if not entries and follow and rotated:
                    file = len(container.files) - 1
                    sent, at_line_start = container.files[file], True
                    continue
                ended = (
                    container.finished
                    or container.killed
                    or ("pods", namespace, name) not in self._objects
                    or self._closing
                )
                if not entries and follow and not ended:
                    self.changed.wait(0.25)
                    continue
            out = bytearray()
            for stamp, entry in entries:
                if stamp < since_ns:
                    at_line_start = entry.endswith(b"\n")
                    continue
                if stamps and at_line_start:
                    out += rfc3339_nano(stamp).encode() + b" "
                out += entry
                at_line_start = entry.endswith(b"\n")
            if out:
                yield bytes(out)
            if not follow or (ended and not entries):
                return
