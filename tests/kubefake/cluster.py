"""The fake cluster's REST API: Jobs, pods, Secrets, watches and pod logs over HTTP."""

from __future__ import annotations

import copy
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from typing import Any

from tests.kubefake.controller import Controller, JobRuntime
from tests.kubefake.protocol import (
    VERSION,
    ApiError,
    delete_options,
    grace_of,
    json_patch,
    matches_fields,
    matches_labels,
    merge_patch,
    parse_time,
    precondition_failed,
    rfc3339,
    utcnow,
    validate_job,
    validate_secret,
)
from tests.kubefake.server import Handler, Stream

_JOBS = re.compile(r"^/apis/batch/v1/namespaces/([^/]+)/jobs(?:/([^/]+))?$")
_PODS = re.compile(r"^/api/v1/namespaces/([^/]+)/pods(?:/([^/]+)(/log)?)?$")
_SECRETS = re.compile(r"^/api/v1/namespaces/([^/]+)/secrets(?:/([^/]+))?$")


class FakeKubernetes(Controller):
    """A fake cluster behind a real HTTP server on loopback; ``start`` it, use ``url``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeKubernetes:
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.cluster = self  # type: ignore[attr-defined]
        self._server = server
        for target in (server.serve_forever, self._control_loop):
            thread = threading.Thread(target=target, name="kubefake", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        with self.changed:
            self._closing = True
            for runtime in self._pods.values():
                if runtime.container is not None:
                    runtime.container.killed = True
            self.changed.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> FakeKubernetes:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve(
        self, method: str, path: str, query: dict[str, str], body: bytes, content_type: str
    ) -> tuple[int, Any] | Stream:
        with self.changed:
            self.requests.append((method, path))
        if path.rstrip("/") == "/version" and method == "GET":
            return 200, VERSION
        if match := _JOBS.match(path):
            return self._serve_jobs(
                method, match.group(1), match.group(2), query, body, content_type
            )
        if match := _PODS.match(path):
            namespace, name, log = match.groups()
            if log and method == "GET":
                return self._serve_log(namespace, name, query)
            return self._serve_pods(method, namespace, name, query, body)
        if match := _SECRETS.match(path):
            return self._serve_secrets(method, match.group(1), match.group(2), query, body)
        raise ApiError(404, "NotFound", "the server could not find the requested resource")

    def _serve_jobs(
        self,
        method: str,
        namespace: str,
        name: str | None,
        query: dict[str, str],
        body: bytes,
        content_type: str,
    ) -> tuple[int, Any] | Stream:
        if name is None and method == "GET":
            return self._list("jobs", namespace, query)
        if name is None and method == "POST":
            return 201, self._create_job(namespace, json.loads(body))
        if name is None:
            raise ApiError(405, "MethodNotAllowed", f"{method} is not supported")
        with self.changed:
            if method == "GET":
                return 200, copy.deepcopy(self._get("jobs", namespace, name))
            if method == "PATCH":
                return 200, self._patch_job(namespace, name, json.loads(body), content_type)
            if method == "DELETE":
                return 200, self._delete_job(namespace, name, delete_options(body, query))
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported")

    def _serve_pods(
        self, method: str, namespace: str, name: str | None, query: dict[str, str], body: bytes
    ) -> tuple[int, Any] | Stream:
        if name is None and method == "GET":
            return self._list("pods", namespace, query)
        with self.changed:
            if name is not None and method == "GET":
                return 200, copy.deepcopy(self._get("pods", namespace, name))
            if name is not None and method == "DELETE":
                options = delete_options(body, query)
                pod = self._get("pods", namespace, name)
                if (uid := options.get("preconditions", {}).get("uid")) and uid != pod["metadata"][
                    "uid"
                ]:
                    raise precondition_failed("pods", name, uid, pod["metadata"]["uid"])
                grace = options.get("gracePeriodSeconds")
                self._delete_pod(pod, grace_of(pod) if grace is None else int(grace))
                return 200, copy.deepcopy(pod)
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported")

    def _serve_secrets(
        self, method: str, namespace: str, name: str | None, query: dict[str, str], body: bytes
    ) -> tuple[int, Any] | Stream:
        if name is None and method == "GET":
            return self._list("secrets", namespace, query)
        if name is None and method == "POST":
            return 201, self._create_secret(namespace, json.loads(body))
        with self.changed:
            if name is not None and method == "GET":
                return 200, copy.deepcopy(self._get("secrets", namespace, name))
            if name is not None and method == "DELETE":
                secret = self._get("secrets", namespace, name)
                options = delete_options(body, query)
                if (uid := options.get("preconditions", {}).get("uid")) and uid != secret[
                    "metadata"
                ]["uid"]:
                    raise precondition_failed("secrets", name, uid, secret["metadata"]["uid"])
                self._drop("secrets", secret)
                return 200, {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": {"name": name, "kind": "secrets", "uid": secret["metadata"]["uid"]},
                }
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported")

    def _create_secret(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.changed:
            self.created_secrets.append(copy.deepcopy(body))
        data = validate_secret(body)
        name = body["metadata"]["name"]
        if body["metadata"].get("namespace") not in (None, namespace):
            raise ApiError(400, "BadRequest", "the namespace of the object does not match")
        with self.changed:
            if ("secrets", namespace, name) in self._objects:
                raise ApiError(
                    409,
                    "AlreadyExists",
                    f'secrets "{name}" already exists',
                    name=name,
                    group="",
                    kind="secrets",
                )
            secret = {
                key: copy.deepcopy(value) for key, value in body.items() if key != "stringData"
            }
            secret["metadata"].update(
                namespace=namespace, uid=str(uuid.uuid4()), creationTimestamp=rfc3339(utcnow())
            )
            secret.update(data=data, type=body.get("type") or "Opaque")
            self._put("secrets", secret, "ADDED")
            return copy.deepcopy(secret)

    def _list(self, kind: str, namespace: str, query: dict[str, str]) -> tuple[int, Any] | Stream:
        labels, fields = query.get("labelSelector", ""), query.get("fieldSelector", "")
        if query.get("watch") in ("true", "1"):
            timeout = float(query.get("timeoutSeconds") or 1800)
            chunks = self._watch(
                kind, namespace, labels, fields, query.get("resourceVersion"), timeout
            )
            return Stream(chunks, "application/json")
        with self.changed:
            items = [
                copy.deepcopy(obj)
                for (k, ns, _), obj in sorted(self._objects.items())
                if k == kind and ns == namespace and self._selected(obj, labels, fields)
            ]
            version = str(self._last_rv)
        if query.get("limit"):
            items = items[: int(query["limit"])]
        list_kind, api_version = {
            "jobs": ("JobList", "batch/v1"),
            "pods": ("PodList", "v1"),
            "secrets": ("SecretList", "v1"),
        }[kind]
        return 200, {
            "kind": list_kind,
            "apiVersion": api_version,
            "metadata": {"resourceVersion": version},
            "items": items,
        }

    @staticmethod
    def _selected(obj: dict[str, Any], labels: str, fields: str) -> bool:
        meta = obj["metadata"]
        return matches_labels(meta.get("labels") or {}, labels) and matches_fields(obj, fields)

    def _watch(
        self,
        kind: str,
        namespace: str,
        labels: str,
        fields: str,
        resource_version: str | None,
        timeout: float,
    ) -> Iterator[bytes]:
        deadline = time.monotonic() + timeout
        with self.changed:
            if resource_version in (None, "", "0"):
                cursor = self._last_rv
                pending = [
                    ("ADDED", copy.deepcopy(obj))
                    for (k, ns, _), obj in sorted(self._objects.items())
                    if k == kind and ns == namespace and self._selected(obj, labels, fields)
                ]
            else:
                cursor, pending = int(resource_version), []
        while True:
            for event, obj in pending:
                yield (json.dumps({"type": event, "object": obj}) + "\n").encode()
            pending = []
            with self.changed:
                while not pending:
                    if self._closing or time.monotonic() >= deadline:
                        return
                    for rv, k, event, obj in self._events_after(cursor):
                        cursor = rv
                        if (
                            k == kind
                            and obj["metadata"]["namespace"] == namespace
                            and self._selected(obj, labels, fields)
                        ):
                            pending.append((event, copy.deepcopy(obj)))
                    if not pending:
                        self.changed.wait(min(0.25, max(deadline - time.monotonic(), 0.001)))

    def _events_after(self, cursor: int) -> list[tuple[int, str, str, dict[str, Any]]]:
        low, high = 0, len(self._events)
        while low < high:  # the first event after the cursor; versions only grow
            middle = (low + high) // 2
            if self._events[middle][0] <= cursor:
                low = middle + 1
            else:
                high = middle
        return self._events[low:]

    def _create_job(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.changed:
            self.created.append(copy.deepcopy(body))
        validate_job(body)
        meta = body["metadata"]
        name = meta["name"]
        if meta.get("namespace") not in (None, namespace):
            raise ApiError(400, "BadRequest", "the namespace of the object does not match")
        with self.changed:
            if ("jobs", namespace, name) in self._objects:
                raise ApiError(
                    409,
                    "AlreadyExists",
                    f'jobs.batch "{name}" already exists',
                    name=name,
                    group="batch",
                    kind="jobs",
                )
            job = copy.deepcopy(body)
            uid = str(uuid.uuid4())
            job["metadata"].update(
                namespace=namespace, uid=uid, creationTimestamp=rfc3339(utcnow()), generation=1
            )
            spec = job["spec"]
            for key, default in (
                ("parallelism", 1),
                ("completions", 1),
                ("backoffLimit", 6),
                ("suspend", False),
                ("completionMode", "NonIndexed"),
                ("podReplacementPolicy", "TerminatingOrFailed"),
            ):
                spec.setdefault(key, default)
            own = {
                "batch.kubernetes.io/controller-uid": uid,
                "batch.kubernetes.io/job-name": name,
                "controller-uid": uid,
                "job-name": name,
            }
            spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
            template = spec["template"]
            template.setdefault("metadata", {}).setdefault("labels", {}).update(own)
            pod_spec = template["spec"]
            pod_spec.setdefault("terminationGracePeriodSeconds", 30)
            pod_spec.setdefault("dnsPolicy", "ClusterFirst")
            pod_spec.setdefault("schedulerName", "default-scheduler")
            for container in pod_spec["containers"]:
                container.setdefault("terminationMessagePath", "/dev/termination-log")
                container.setdefault("terminationMessagePolicy", "File")
                container.setdefault(
                    "imagePullPolicy",
                    "Always" if container["image"].endswith(":latest") else "IfNotPresent",
                )
            job["status"] = {}
            job["kind"], job["apiVersion"] = "Job", "batch/v1"
            self._jobs[(namespace, name)] = JobRuntime()
            self._put("jobs", job, "ADDED")
            if not spec["suspend"]:
                self._start_job(job)
            return copy.deepcopy(job)

    def _patch_job(
        self, namespace: str, name: str, patch: Any, content_type: str
    ) -> dict[str, Any]:
        job = self._get("jobs", namespace, name)
        changed = copy.deepcopy(job)
        if content_type.startswith("application/json-patch+json"):
            json_patch(changed, patch)
        else:
            if (uid := patch.get("metadata", {}).get("uid")) and uid != job["metadata"]["uid"]:
                raise precondition_failed("jobs", name, uid, job["metadata"]["uid"])
            merge_patch(changed, patch)
        if changed["spec"]["template"] != job["spec"]["template"]:
            raise ApiError(
                422,
                "Invalid",
                f'Job.batch "{name}" is invalid: spec.template: field is immutable',
                name=name,
                group="batch",
                kind="Job",
            )
        was_suspended = job["spec"].get("suspend")
        changed["metadata"]["generation"] = job["metadata"].get("generation", 1) + 1
        self._put("jobs", changed)
        runtime = self._jobs[(namespace, name)]
        if was_suspended and not changed["spec"].get("suspend") and runtime.started_at is None:
            self._start_job(changed)
        return copy.deepcopy(changed)

    def _serve_log(self, namespace: str, name: str, query: dict[str, str]) -> Stream:
        with self.changed:
            pod = self._get("pods", namespace, name)
            runtime = self._pods.get((namespace, name))
            wanted = query.get("container")
            names = [c["name"] for c in pod["spec"]["containers"]]
            if wanted and wanted not in names:
                raise ApiError(400, "BadRequest", f"container {wanted} is not valid for pod {name}")
            if runtime is None or runtime.container is None:
                waiting = pod["status"]["containerStatuses"][0]["state"].get("waiting", {})
                reason = waiting.get("reason", "ContainerCreating")
                raise ApiError(
                    400,
                    "BadRequest",
                    f'container "{names[0]}" in pod "{name}" is waiting to start: {reason}',
                )
            container = runtime.container
        follow = query.get("follow") in ("true", "1")
        stamps = query.get("timestamps") in ("true", "1")
        since_ns = 0
        if query.get("sinceTime"):
            since_ns = int(parse_time(query["sinceTime"]) * 1_000_000_000)
        elif query.get("sinceSeconds"):
            since_ns = time.time_ns() - int(query["sinceSeconds"]) * 1_000_000_000
        tail = int(query["tailLines"]) if query.get("tailLines") else None
        chunks = self._log_chunks(namespace, name, container, follow, stamps, since_ns, tail)
        return Stream(chunks, "text/plain")
