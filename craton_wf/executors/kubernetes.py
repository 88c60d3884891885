"""Kubernetes as an executor: one ``batch/v1`` Job per run attempt.

The manifest and its hardening are in :mod:`craton_wf.executors.kubemanifest`.
This module drives the Job through the official client:

- ``create`` makes the Job suspended and ``start`` unsuspends it: a Job runs
  as soon as it is unsuspended, so "created" (suspended) and "running" stay
  two states, as they are for a container, and a runner that adopts a run
  knows whether it still has to start it. ``find`` reads the Job by its
  deterministic name; the labels it reports come from the Job's
  ``craton.labels`` annotation (exactly the spec's).
- ``logs`` waits for the Job's pod (label ``job-name``, owned by the Job's
  uid) to run, then follows ``GET …/pods/{pod}/log?follow&timestamps``.
  Kubernetes merges a container's stdout and stderr into one log, so every
  line is reported as ``stdout``. The log is read from its start and lines
  stamped at or before ``since`` are skipped: the client has no ``sinceTime``
  and ``sinceSeconds`` would depend on the clocks of runner and node agreeing.
  If the follow stream ends or breaks before the log does (while the
  container still runs, or before its last line: one line read from the
  log's end says), the log is read again and the lines already yielded are
  skipped (after ten reads in a row that broke or were answered 5xx without
  a line, a gap line says from where the log is missing); if it now
  begins after the last line yielded, the kubelet rotated lines away
  meanwhile, and a ``[craton] log gap`` line stands there (how many is not
  known: the kubelet says nothing of rotated files). Within one stream the
  kubelet reads the log's files in turn, but a stream more than a whole file
  (``containerLogMaxSize``) behind the container goes on with the current
  file and skips those between, which no reader can see: the log is exact
  while its reader keeps within a file of the output. When the pod cannot
  start (its image cannot be pulled, its configuration is invalid) or the
  Job ends before its pod ran, one ``system`` line says why and the log ends.
- ``wait`` reads the exit code from the pod's container status
  (``terminated.exitCode``), watching the Job's pods between reads. A Job
  that failed for exceeding ``activeDeadlineSeconds`` reports 124 (what
  ``timeout(1)`` reports); a pod that ended without its container reporting
  a code, or that cannot start, reports 125.
- ``stop`` (cancel) deletes the Job, foreground so the Job stays visible until
  its pods are gone, and deletes its pods with the grace period, so the
  kubelet sends SIGTERM and SIGKILL after the grace. It returns once the
  container has ended; its code, seen on the way, is what ``wait`` reports
  afterwards (137 when it was not seen). ``remove`` deletes the Job in the
  background and is quiet when it is gone.
- The run's environment is not in the Job: ``create`` puts it in a Secret
  named like the Job and owned by it (``kubemanifest.env_secret_manifest``),
  made right after the Job and before ``start`` unsuspends it, so the pod
  never starts without it. Kubernetes' garbage collector deletes the Secret
  with its Job (``remove``, ``stop``, ``ttlSecondsAfterFinished``). If the
  Secret cannot be made, the Job is deleted. A runner that stopped between
  the two leaves a suspended Job without its Secret: ``start`` (by the runner
  that adopts the run) finds the Secret missing, deletes the Job and reports
  it gone; the sweep removes it too once the run is final. A Secret of the
  same name left by an earlier Job (not yet collected) is replaced.
- ``managed`` lists the namespace's Jobs by the label selector
  ``craton.run-uid`` (the key present, any value); as with ``find``, the
  labels reported are the annotation's exact values, not the cut ones.

The client is made on first use from the in-cluster service account or a
kubeconfig, never at import time. Deletes are sent without deserializing the
answer: the API server answers a graceful delete with the object, not the
``Status`` the client's models expect.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import kubernetes.client
import kubernetes.config
import kubernetes.watch
import urllib3.exceptions
from kubernetes.client.exceptions import ApiException

from craton_wf.domain.logmarks import log_gap_marker
from craton_wf.errors import ContainerNotFound, ExecutorError, NameTaken, truncate_message
from craton_wf.executors.base import (
    RUN_UID_LABEL,
    ContainerSpec,
    ContainerState,
    Executor,
    Handle,
    LogLine,
)
from craton_wf.executors.kubemanifest import (
    CONTAINER_NAME,
    MANAGED_LABEL,
    JobOptions,
    env_secret_manifest,
    env_secret_of,
    job_manifest,
    job_name,
    labels_of,
)

if TYPE_CHECKING:
    from craton_wf.settings import Settings

DEADLINE_EXIT_CODE = 124  # the Job ran longer than activeDeadlineSeconds
NO_EXIT_CODE = 125  # the pod ended, or cannot start, without a code from its container
KILLED_EXIT_CODE = 137  # stopped, and the container's own code was not seen
MAX_LINE_BYTES = 1024 * 1024
WATCH_SECONDS = 5.0
LOG_REOPEN_SECONDS = 0.5
LOG_READ_ATTEMPTS = 10  # reads of a log in a row that may fail (no line) before giving up
STOP_MARGIN_SECONDS = 30.0
REQUEST_TIMEOUT = (10.0, 60.0)  # connect, read: every call but the follow streams
SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
# A container waiting for one of these will not start without someone's help.
STUCK_REASONS = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "CreateContainerConfigError",
        "CreateContainerError",
    }
)

_TIMESTAMP = re.compile(rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d) ")


def _api_message(exc: ApiException) -> str:
    """``status reason: message`` of an API error, the message read from its Status body."""
    body = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else exc.body
    message = body or ""
    try:
        parsed = json.loads(message) if message else None
        if isinstance(parsed, dict) and parsed.get("message"):
            message = str(parsed["message"])
    except ValueError:
        pass
    return truncate_message(f"{exc.status} {exc.reason or ''}: {message}".replace(" :", ":"))


@contextmanager
def kubernetes_errors(
    action: str, not_found: type[ExecutorError] = ContainerNotFound
) -> Iterator[None]:
    """Translate API and transport errors raised while doing ``action``."""
    try:
        yield
    except ApiException as exc:
        error = not_found if exc.status == 404 else ExecutorError
        raise error(f"could not {action}: {_api_message(exc)}") from exc
    except kubernetes.config.ConfigException as exc:
        raise ExecutorError(f"could not {action}: {truncate_message(str(exc))}") from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise ExecutorError(
            f"could not {action}: no answer from the API server: "
            f"{truncate_message(str(exc) or type(exc).__name__)}"
        ) from exc
    except ValueError as exc:  # an answer the client's models do not accept
        raise ExecutorError(
            f"could not {action}: unexpected answer: {truncate_message(str(exc))}"
        ) from exc


def _raise_for_status(response: Any) -> None:
    """Raise ``ApiException`` for a raw (not preloaded) response that is not a success."""
    if not 200 <= response.status <= 299:
        body = response.data
        raise ApiException(
            status=response.status,
            reason=response.reason,
            body=body.decode("utf-8", "replace") if isinstance(body, bytes) else body,
        )


def parse_log_line(raw: bytes) -> tuple[int | None, datetime, bytes]:
    """(nanoseconds since the epoch, stamp, text) of one ``timestamps=true`` log line."""
    match = _TIMESTAMP.match(raw)
    if match is None:
        return None, datetime.now(UTC), raw
    seconds, fraction, zone = (g.decode() if g else "" for g in match.groups())
    whole = datetime.fromisoformat(seconds + ("+00:00" if zone == "Z" else zone)).astimezone(UTC)
    nanos = int((fraction or "0").ljust(9, "0"))
    epoch_ns = int(whole.timestamp()) * 1_000_000_000 + nanos
    return epoch_ns, whole + timedelta(microseconds=nanos // 1000), raw[match.end() :]


def _stamp_of_ns(epoch_ns: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=epoch_ns // 1000)


def _transient(exc: ExecutorError) -> bool:
    """Whether a read may go through if made again: the connection failed or
    broke, or the API server or kubelet answered 5xx."""
    cause = exc.__cause__
    if isinstance(cause, ApiException):
        return (cause.status or 0) >= 500
    return isinstance(cause, urllib3.exceptions.HTTPError | OSError)


def _condition(job: Any, kind: str) -> Any:
    for condition in (job.status and job.status.conditions) or []:
        if condition.type == kind and condition.status == "True":
            return condition
    return None


def _job_finished(job: Any) -> bool:
    return bool(_condition(job, "Complete") or _condition(job, "Failed"))


def _state_of(job: Any) -> ContainerState:
    if _job_finished(job) or job.metadata.deletion_timestamp is not None:
        return ContainerState.EXITED
    if job.spec.suspend:
        return ContainerState.CREATED
    return ContainerState.RUNNING


def _handle_of(job: Any) -> Handle:
    """A Job's handle; its labels as given (the annotation's), not as cut to fit."""
    return Handle(
        id=job.metadata.uid,
        name=job.metadata.name,
        state=_state_of(job),
        labels=labels_of(job.metadata),
    )


def _container_status(pod: Any) -> Any:
    for status in (pod.status and pod.status.container_statuses) or []:
        if status.name == CONTAINER_NAME:
            return status
    return None


def _terminated(pod: Any) -> Any:
    status = _container_status(pod)
    return status.state.terminated if status and status.state else None


def _stuck(pod: Any) -> Any:
    """The container's waiting state if it will not start by itself, else None."""
    status = _container_status(pod)
    waiting = status.state.waiting if status and status.state else None
    return waiting if waiting is not None and waiting.reason in STUCK_REASONS else None


def _started(pod: Any) -> bool:
    status = _container_status(pod)
    return bool(status and status.state and (status.state.running or status.state.terminated))


def _creation_order(pod: Any) -> tuple[float, str]:
    created = pod.metadata.creation_timestamp
    return (created.timestamp() if created else 0.0, pod.metadata.name)


@dataclass
class _Stop:
    """A stop in progress (``done`` unset) or made, and the exit code it saw."""

    code: int = KILLED_EXIT_CODE
    done: threading.Event = field(default_factory=threading.Event)


@dataclass
class _Pods:
    """The pods of one Job, newest last, and the resource version they were listed at."""

    items: list[Any]
    resource_version: str | None

    @property
    def current(self) -> Any:
        return self.items[-1] if self.items else None


class KubernetesExecutor(Executor):
    """Runs each attempt of a run as a Kubernetes Job in one namespace."""

    name = "kubernetes"

    def __init__(
        self,
        *,
        namespace: str | None = None,
        kubeconfig: str | None = None,
        context: str | None = None,
        in_cluster: bool | None = None,
        configuration: kubernetes.client.Configuration | None = None,
        options: JobOptions | None = None,
        max_line_bytes: int = MAX_LINE_BYTES,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.context = context
        self.in_cluster = in_cluster
        self.options = options or JobOptions()
        self.max_line_bytes = max_line_bytes
        self._namespace = namespace
        self._configuration = configuration
        self._client: kubernetes.client.ApiClient | None = None
        self._lock = threading.Lock()
        self._stops: dict[str, _Stop] = {}
        self._secured: set[str] = set()  # uids of the Jobs whose Secret this executor made

    @classmethod
    def from_settings(cls, settings: Settings) -> KubernetesExecutor:
        return cls(
            namespace=settings.kubernetes_namespace,
            kubeconfig=settings.kubernetes_kubeconfig,
            context=settings.kubernetes_context,
            in_cluster=settings.kubernetes_in_cluster,
            options=JobOptions(
                image_pull_secrets=tuple(settings.kubernetes_image_pull_secrets),
                ttl_seconds_after_finished=settings.kubernetes_ttl_seconds_after_finished,
                service_account=settings.kubernetes_service_account,
                termination_grace_seconds=math.ceil(settings.stop_grace_seconds),
            ),
        )

    # -- connection ---------------------------------------------------------------

    @property
    def client(self) -> kubernetes.client.ApiClient:
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    @property
    def namespace(self) -> str:
        self.client  # noqa: B018 - connecting settles the namespace
        assert self._namespace is not None
        return self._namespace

    def _uses_in_cluster(self) -> bool:
        if self.in_cluster is not None:
            return self.in_cluster
        return not self.kubeconfig and bool(os.environ.get("KUBERNETES_SERVICE_HOST"))

    def _connect(self) -> kubernetes.client.ApiClient:
        configuration = self._configuration
        if configuration is None:
            configuration = kubernetes.client.Configuration()
            self._load_configuration(configuration)
        # One follow stream per running task, and the calls beside them.
        configuration.connection_pool_maxsize = max(configuration.connection_pool_maxsize or 0, 64)
        if self._namespace is None:
            self._namespace = self._default_namespace()
        return kubernetes.client.ApiClient(configuration)

    def _load_configuration(self, configuration: kubernetes.client.Configuration) -> None:
        if self._uses_in_cluster():
            where = "the in-cluster service account"
        else:
            where = f"kubeconfig {self.kubeconfig or '~/.kube/config'}"
            where += f" (context {self.context})" if self.context else ""
        try:
            if self._uses_in_cluster():
                kubernetes.config.load_incluster_config(client_configuration=configuration)
            else:
                kubernetes.config.load_kube_config(
                    config_file=self.kubeconfig,
                    context=self.context,
                    client_configuration=configuration,
                    persist_config=False,
                )
        except (kubernetes.config.ConfigException, OSError, ValueError, TypeError) as exc:
            raise ExecutorError(
                f"could not load the Kubernetes configuration from {where}: "
                f"{truncate_message(str(exc) or type(exc).__name__)}"
            ) from exc

    def _default_namespace(self) -> str:
        """The service account's namespace in a cluster, else the kubeconfig context's."""
        if self._configuration is not None:
            return "default"
        if self._uses_in_cluster():
            try:
                with open(SERVICE_ACCOUNT_NAMESPACE) as file:
                    return file.read().strip() or "default"
            except OSError:
                return "default"
        try:
            contexts, active = kubernetes.config.list_kube_config_contexts(self.kubeconfig)
            chosen = next((c for c in contexts if c["name"] == self.context), active)
            return str(chosen.get("context", {}).get("namespace") or "default")
        except (kubernetes.config.ConfigException, OSError, KeyError, TypeError, ValueError):
            return "default"

    @property
    def batch(self) -> kubernetes.client.BatchV1Api:
        return kubernetes.client.BatchV1Api(self.client)

    @property
    def core(self) -> kubernetes.client.CoreV1Api:
        return kubernetes.client.CoreV1Api(self.client)

    def ping(self) -> None:
        api = self.client
        where = f"reach the Kubernetes API at {api.configuration.host}"
        with kubernetes_errors(where, not_found=ExecutorError):
            kubernetes.client.VersionApi(api).get_code(_request_timeout=REQUEST_TIMEOUT)
        with kubernetes_errors(f"list the Jobs of namespace {self.namespace}", ExecutorError):
            self.batch.list_namespaced_job(
                self.namespace, limit=1, _request_timeout=REQUEST_TIMEOUT
            )

    # -- the Job ------------------------------------------------------------------

    def create(self, spec: ContainerSpec) -> Handle:
        manifest: Any = job_manifest(spec, self.options)  # the client takes plain manifests
        name = manifest["metadata"]["name"]
        with kubernetes_errors(f"create Job {name}", not_found=ExecutorError):
            try:
                created: Any = self.batch.create_namespaced_job(
                    self.namespace, manifest, _request_timeout=REQUEST_TIMEOUT
                )
            except ApiException as exc:
                if exc.status == 409:
                    raise NameTaken(f"Job name {name} is already taken") from exc
                raise
        handle = Handle(
            id=created.metadata.uid,
            name=name,
            state=ContainerState.CREATED,
            labels={**spec.labels, MANAGED_LABEL: "true"},
        )
        if spec.env:
            try:
                self._create_env_secret(env_secret_manifest(spec, handle.id))
            except ExecutorError:
                self._delete_job(handle, "Background")
                raise
            with self._lock:
                self._secured.add(handle.id)
        return handle

    def _create_env_secret(self, secret: dict[str, Any]) -> None:
        name = secret["metadata"]["name"]
        with kubernetes_errors(f"create Secret {name}", not_found=ExecutorError):
            try:
                self._post_secret(secret)
            except ApiException as exc:
                if exc.status != 409:
                    raise
                # An earlier Job's of the same name, not yet collected: replaced.
                self._delete_secret(name)
                self._post_secret(secret)

    def _post_secret(self, secret: Any) -> None:  # the client takes plain manifests
        response = self.core.create_namespaced_secret(
            self.namespace, secret, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
        )
        _raise_for_status(response)

    def _delete_secret(self, name: str) -> None:
        try:
            response = self.core.delete_namespaced_secret(
                name, self.namespace, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
            )
            _raise_for_status(response)
        except ApiException as exc:
            if exc.status != 404:
                raise

    def _has_secret(self, name: str) -> bool:
        try:
            with kubernetes_errors(f"read Secret {name}"):
                response = self.core.read_namespaced_secret(
                    name, self.namespace, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
                )
                _raise_for_status(response)
        except ContainerNotFound:
            return False
        return True

    def _read_job(self, name: str) -> Any:
        """The Job of that name, or None."""
        try:
            with kubernetes_errors(f"read Job {name}"):
                return self.batch.read_namespaced_job(
                    name, self.namespace, _request_timeout=REQUEST_TIMEOUT
                )
        except ContainerNotFound:
            return None

    def _job_of(self, handle: Handle) -> Any:
        """The handle's Job (same name and uid), or None."""
        job = self._read_job(handle.name)
        return job if job is not None and job.metadata.uid == handle.id else None

    def find(self, name: str) -> Handle | None:
        job = self._read_job(job_name(name))
        return None if job is None else _handle_of(job)

    def managed(self) -> list[Handle]:
        """The namespace's Jobs labelled with a run uid, labels as given (the annotation's)."""
        action = f"list the Jobs of runs in namespace {self.namespace}"
        with kubernetes_errors(action, not_found=ExecutorError):
            listed: Any = self.batch.list_namespaced_job(
                self.namespace, label_selector=RUN_UID_LABEL, _request_timeout=REQUEST_TIMEOUT
            )
        return [_handle_of(job) for job in listed.items]

    def start(self, handle: Handle) -> None:
        job = self._job_of(handle)
        if job is None:
            raise ContainerNotFound(f"Job {handle.name} is gone")
        if not job.spec.suspend:
            return
        with self._lock:
            secured = handle.id in self._secured
            self._secured.discard(handle.id)
        secret = None if secured else env_secret_of(job.spec.template.spec)
        if secret is not None and not self._has_secret(secret):
            self._delete_job(handle, "Background")
            raise ContainerNotFound(
                f"Job {handle.name} has no Secret {secret} with its environment "
                "(its runner stopped before making it): the Job is removed"
            )
        with kubernetes_errors(f"start Job {handle.name}"):
            self.batch.patch_namespaced_job(
                handle.name,
                self.namespace,
                {"metadata": {"uid": handle.id}, "spec": {"suspend": False}},
                _request_timeout=REQUEST_TIMEOUT,
            )

    # -- its pod ------------------------------------------------------------------

    def _pods(self, handle: Handle) -> _Pods:
        with kubernetes_errors(f"list the pods of Job {handle.name}", ExecutorError):
            listed: Any = self.core.list_namespaced_pod(
                self.namespace,
                label_selector=f"job-name={handle.name}",
                _request_timeout=REQUEST_TIMEOUT,
            )
        owned = [
            pod
            for pod in listed.items
            if any(ref.uid == handle.id for ref in pod.metadata.owner_references or [])
        ]
        owned.sort(key=_creation_order)
        return _Pods(owned, listed.metadata.resource_version if listed.metadata else None)

    def _pod_events(
        self, handle: Handle, resource_version: str | None, seconds: float
    ) -> Generator[tuple[str, Any], None, None]:
        """(type, pod) of each change of the Job's pods after that version, for ``seconds``."""
        if seconds <= 0:
            return
        watch = kubernetes.watch.Watch()
        try:
            with kubernetes_errors(f"watch the pods of Job {handle.name}", ExecutorError):
                for event in watch.stream(
                    self.core.list_namespaced_pod,
                    self.namespace,
                    label_selector=f"job-name={handle.name}",
                    resource_version=resource_version,
                    timeout_seconds=max(1, math.ceil(seconds)),
                    _request_timeout=(REQUEST_TIMEOUT[0], seconds + 0.5),
                ):
                    yield event["type"], event["object"]
        except ExecutorError as exc:
            cause = exc.__cause__
            if isinstance(cause, ApiException) and cause.status == 410:
                return  # the version is too old to watch from: read again
            if isinstance(cause, urllib3.exceptions.ReadTimeoutError | TimeoutError):
                return
            raise
        finally:
            watch.stop()

    def _await_pod_change(
        self, handle: Handle, resource_version: str | None, seconds: float
    ) -> None:
        """Return at the next change of the Job's pods, or after ``seconds``."""
        events = self._pod_events(handle, resource_version, seconds)
        next(events, None)
        events.close()

    def _stop_of(self, handle: Handle) -> _Stop | None:
        with self._lock:
            return self._stops.get(handle.id)

    def _gone(self, handle: Handle) -> None:
        """The handle's Job no longer exists: fine if this executor stopped it."""
        if self._stop_of(handle) is None:
            raise ContainerNotFound(f"Job {handle.name} is gone")

    # -- logs ---------------------------------------------------------------------

    def logs(self, handle: Handle, since: datetime | None = None) -> Iterator[LogLine]:
        pod_name, note = self._started_pod(handle)
        if note is not None and (since is None or note.ts > since):
            yield note
        if pod_name is not None:
            yield from self._follow(handle, pod_name, since)

    def _started_pod(self, handle: Handle) -> tuple[str | None, LogLine | None]:
        """The pod once its container runs or ran; else None and why it never will."""
        while True:
            job = self._job_of(handle)
            if job is None:
                self._gone(handle)
                return None, None
            pods = self._pods(handle)
            pod = pods.current
            if pod is not None and _started(pod):
                return pod.metadata.name, None
            if pod is not None and (waiting := _stuck(pod)) is not None:
                return None, self._note(
                    f"pod {pod.metadata.name} cannot start: "
                    f"{waiting.reason}: {waiting.message or ''}"
                )
            failed = _condition(job, "Failed")
            if failed is not None:
                return None, self._note(
                    f"Job {handle.name} failed before its pod ran: "
                    f"{failed.reason}: {failed.message or ''}"
                )
            if _job_finished(job) or (pod is None and job.metadata.deletion_timestamp):
                return None, None
            self._await_pod_change(handle, pods.resource_version, WATCH_SECONDS)

    @staticmethod
    def _note(text: str) -> LogLine:
        return LogLine(stream="system", ts=datetime.now(UTC), text=f"[kubernetes] {text.strip()}")

    def _follow(self, handle: Handle, pod_name: str, since: datetime | None) -> Iterator[LogLine]:
        """Each line of the pod's log once, following it until the container ended.

        A stream that ends or breaks while the container runs, or that ended
        before the log's last line (and the container ended meanwhile), is
        opened again; the lines already yielded are recognised by their stamps (and,
        for lines stamped alike, their count) and skipped. If the log read again
        begins after the last line yielded, the kubelet rotated that line away,
        and maybe lines after it: a ``system`` gap line stands before the first
        line it still has.
        """
        last_ns: int | None = None
        seen_at_last = 0  # lines yielded that are stamped last_ns
        read_after_end = False
        failures = 0  # reads in a row that failed before a line came
        while True:
            skip_at_last = seen_at_last
            unterminated = bytearray()
            reopened = last_ns is not None
            try:
                for epoch_ns, line in self._lines(handle, pod_name, unterminated):
                    if reopened and epoch_ns is not None and last_ns is not None:
                        reopened = False
                        if epoch_ns > last_ns:
                            after = _stamp_of_ns(last_ns)
                            yield LogLine("system", line.ts, log_gap_marker(after, line.ts))
                    failures = 0
                    if epoch_ns is not None and last_ns is not None:
                        if epoch_ns < last_ns:
                            continue
                        if epoch_ns == last_ns and skip_at_last:
                            skip_at_last -= 1
                            continue
                    if epoch_ns is not None:
                        seen_at_last = seen_at_last + 1 if epoch_ns == last_ns else 1
                        last_ns = epoch_ns
                    if since is None or line.ts > since:
                        yield line
            except ContainerNotFound:
                return  # the pod is gone, and its log with it
            except ExecutorError as exc:
                failures += 1
                if not _transient(exc):
                    raise
                if failures >= LOG_READ_ATTEMPTS:  # what the container prints now is lost
                    read_to = None if last_ns is None else _stamp_of_ns(last_ns)
                    yield LogLine("system", datetime.now(UTC), log_gap_marker(read_to, None))
                    raise
                time.sleep(LOG_REOPEN_SECONDS)
                continue  # the connection broke, or the kubelet did not answer: again
            pod = self._read_pod(pod_name)
            if pod is None or _terminated(pod) is not None:
                seen_ns = parse_log_line(bytes(unterminated))[0] if unterminated else last_ns
                if (
                    pod is not None
                    and not read_after_end
                    and self._log_ends_after(handle, pod_name, seen_ns)
                ):
                    read_after_end = True  # the stream broke before the container ended
                    continue
                if unterminated:  # the container's last words, without a newline
                    _, line = self._line(bytes(unterminated))
                    if since is None or line.ts > since:
                        yield line
                return
            time.sleep(LOG_REOPEN_SECONDS)

    def _log_ends_after(self, handle: Handle, pod_name: str, seen_ns: int | None) -> bool:
        """Whether the pod's log has a last line stamped after ``seen_ns`` (one line read)."""
        try:
            with kubernetes_errors(f"read the log of pod {pod_name} of Job {handle.name}"):
                response = self._open_log(pod_name, tail_lines=1, _request_timeout=REQUEST_TIMEOUT)
                try:
                    _raise_for_status(response)
                    last = response.data
                finally:
                    response.release_conn()
        except ContainerNotFound:
            return False
        if not last:
            return False
        epoch_ns = parse_log_line(last)[0]
        return epoch_ns is not None and (seen_ns is None or epoch_ns > seen_ns)

    def _open_log(self, pod_name: str, **query: Any) -> Any:
        """The raw answer (its body not read yet) to ``GET …/log?timestamps`` and ``query``."""
        return self.core.read_namespaced_pod_log(
            pod_name,
            self.namespace,
            container=CONTAINER_NAME,
            timestamps=True,
            _preload_content=False,
            **query,
        )

    def _read_pod(self, pod_name: str) -> Any:
        try:
            with kubernetes_errors(f"read pod {pod_name}"):
                return self.core.read_namespaced_pod(
                    pod_name, self.namespace, _request_timeout=REQUEST_TIMEOUT
                )
        except ContainerNotFound:
            return None

    def _lines(
        self, handle: Handle, pod_name: str, unterminated: bytearray
    ) -> Iterator[tuple[int | None, LogLine]]:
        """One pass over the pod's log; what follows the last newline stays in ``unterminated``."""
        with kubernetes_errors(f"read the log of pod {pod_name} of Job {handle.name}"):
            # A follow stream lasts as long as the container runs: no read timeout.
            response = self._open_log(pod_name, follow=True)
            try:
                _raise_for_status(response)
                for chunk in response.stream(amt=None, decode_content=True):
                    unterminated += chunk
                    while (newline := unterminated.find(b"\n")) >= 0:
                        yield self._line(bytes(unterminated[:newline]))
                        del unterminated[: newline + 1]
                    if len(unterminated) >= self.max_line_bytes:
                        yield self._line(bytes(unterminated))
                        unterminated.clear()
            finally:
                response.release_conn()

    @staticmethod
    def _line(raw: bytes) -> tuple[int | None, LogLine]:
        epoch_ns, stamp, text = parse_log_line(raw)
        return epoch_ns, LogLine(stream="stdout", ts=stamp, text=text.decode("utf-8", "replace"))

    # -- exit code ----------------------------------------------------------------

    def wait(self, handle: Handle, timeout: float | None = None) -> int | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            code, resource_version, stop = self._exit_code(handle)
            if code is not None:
                return code
            remaining = WATCH_SECONDS if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                return None
            if stop is not None:
                stop.done.wait(min(remaining, WATCH_SECONDS))
            else:
                self._await_pod_change(handle, resource_version, min(remaining, WATCH_SECONDS))

    def _exit_code(self, handle: Handle) -> tuple[int | None, str | None, _Stop | None]:
        """The exit code if the run ended; else what to wait on: a pods' version or a stop."""
        stop = self._stop_of(handle)
        job = self._job_of(handle)
        if job is None:
            self._gone(handle)
            assert stop is not None
            return (stop.code, None, None) if stop.done.is_set() else (None, None, stop)
        failed = _condition(job, "Failed")
        if failed is not None and failed.reason == "DeadlineExceeded":
            return DEADLINE_EXIT_CODE, None, None
        pods = self._pods(handle)
        pod = pods.current
        if pod is not None and (terminated := _terminated(pod)) is not None:
            return int(terminated.exit_code), None, None
        if pod is not None and _stuck(pod) is not None:
            return NO_EXIT_CODE, None, None
        if stop is not None and pod is None and job.metadata.deletion_timestamp:
            return (stop.code, None, None) if stop.done.is_set() else (None, None, stop)
        if _condition(job, "Complete") is not None:
            return 0, None, None
        if failed is not None:
            return NO_EXIT_CODE, None, None
        return None, pods.resource_version, None

    # -- stop and remove ----------------------------------------------------------

    def stop(self, handle: Handle, grace_seconds: float = 10.0) -> None:
        job = self._job_of(handle)
        if job is None or _job_finished(job):
            return  # gone, or ended by itself: its pod keeps the exit code
        stop = _Stop()
        with self._lock:
            self._stops[handle.id] = stop
        try:
            grace = max(0, math.ceil(grace_seconds))
            pods = self._pods(handle)
            self._delete_job(handle, "Foreground")
            for pod in pods.items:
                self._delete_pod(pod.metadata.name, grace)
            stop.code = self._await_end(handle, pods, grace + STOP_MARGIN_SECONDS, stop.code)
        finally:
            stop.done.set()

    def _await_end(self, handle: Handle, pods: _Pods, seconds: float, code: int) -> int:
        """The container's exit code once ``pods`` have ended or gone (``code`` if not seen).

        The codes are read from the changes since ``pods`` were listed: a pod
        deleted right after its container ended is seen terminated only in them.
        """
        deadline = time.monotonic() + seconds
        live: set[str] = set()
        for pod in pods.items:
            if (terminated := _terminated(pod)) is not None:
                code = int(terminated.exit_code)
            else:
                live.add(pod.metadata.name)
        resource_version = pods.resource_version
        while live and time.monotonic() < deadline:
            events = self._pod_events(handle, resource_version, deadline - time.monotonic())
            for kind, pod in events:
                resource_version = pod.metadata.resource_version
                if (terminated := _terminated(pod)) is not None:
                    code = int(terminated.exit_code)
                if terminated is not None or kind == "DELETED":
                    live.discard(pod.metadata.name)
                if not live:
                    break
            events.close()
        return code

    def _delete_job(self, handle: Handle, propagation: str) -> None:
        body = kubernetes.client.V1DeleteOptions(
            propagation_policy=propagation,
            preconditions=kubernetes.client.V1Preconditions(uid=handle.id),
        )
        try:
            with kubernetes_errors(f"delete Job {handle.name}"):
                response = self.batch.delete_namespaced_job(
                    handle.name,
                    self.namespace,
                    body=body,
                    _preload_content=False,
                    _request_timeout=REQUEST_TIMEOUT,
                )
                _raise_for_status(response)
        except ContainerNotFound:
            return
        except ExecutorError as exc:
            cause = exc.__cause__
            if isinstance(cause, ApiException) and cause.status == 409:
                return  # a Job of that name, but not this one: this one is gone
            raise

    def _delete_pod(self, pod_name: str, grace: int) -> None:
        try:
            with kubernetes_errors(f"delete pod {pod_name}"):
                response = self.core.delete_namespaced_pod(
                    pod_name,
                    self.namespace,
                    body=kubernetes.client.V1DeleteOptions(grace_period_seconds=grace),
                    _preload_content=False,
                    _request_timeout=REQUEST_TIMEOUT,
                )
                _raise_for_status(response)
        except ContainerNotFound:
            return

    def remove(self, handle: Handle) -> None:
        """Delete the Job, and with it (garbage collection) its pods and Secret."""
        self._delete_job(handle, "Background")
        with self._lock:
            self._stops.pop(handle.id, None)
            self._secured.discard(handle.id)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
