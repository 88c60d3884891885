"""The ``batch/v1`` Job one run attempt becomes, as a plain manifest.

Kept apart from the client code so the manifest can be read (and validated
against the Kubernetes schemas) without a cluster.

The Job runs one pod once: ``backoffLimit: 0`` because the platform owns
retries, ``restartPolicy: Never``, ``activeDeadlineSeconds`` from the step's
timeout. It is created suspended; starting the run unsuspends it, so a Job
that exists but never started is the executor's "created" state and an
adopting runner can tell the two apart.

The pod meets the ``restricted`` Pod Security profile: non-root (uid and gid
65534, like the Docker executor's ``nobody``), no privilege escalation, every
capability dropped, the ``RuntimeDefault`` seccomp profile, a read-only root
filesystem with an ``emptyDir`` in memory at ``/tmp``. It gets no service
account token and no service environment variables. The task's command is
the container's ``args``, so the image's entrypoint is kept, as with Docker.

Resources: memory is requested and limited at the task's limit; CPU is limited
at the task's limit but requests at most a tenth of a core, since tasks mostly
wait on remote hosts and a request of a whole core each would keep a modest
cluster from running a wide audit. Kubernetes has no per-pod process limit
(the kubelet's ``podPidsLimit`` applies to every pod of a node), so ``pids``
is not carried.

Network: a pod always has the cluster network; there is no per-pod ``none``.
The pod is labelled ``craton.network: none`` or ``default`` and a
NetworkPolicy selecting ``craton.network=none`` (in the platform's Helm chart)
denies its ingress and egress. Without such a policy in the namespace a task
that did not ask for the network still has it.

Environment: no value is written in the Job. Every variable of the run (its
secrets, ``CRATON_TOKEN``) is a ``secretKeyRef`` to a Secret named like the
Job (:func:`env_secret_manifest`), which the executor creates right after the
Job, owned by it (``ownerReferences`` with the Job's uid), so Kubernetes'
garbage collector deletes it with the Job; ``immutable``, so kubelets need
not watch it. Reading a Job (``get jobs``) shows no secret value.

Names and labels: the Job's name is the container name made a DNS-1123 label
(it also becomes the value of the pod's ``job-name`` label, so at most 63
characters); label values are cut to what Kubernetes accepts. The labels as
given are kept in the ``craton.labels`` annotation, which is what the executor
reads back, so adoption compares exact values.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from craton_wf.domain.resources import parse_placement
from craton_wf.executors.base import ContainerSpec

MANAGED_LABEL = "craton.managed"
NETWORK_LABEL = "craton.network"
LABELS_ANNOTATION = "craton.labels"
CONTAINER_NAME = "task"
USER_ID = 65534
MAX_NAME_CHARS = 63
DEFAULT_TMP_BYTES = 64 * 1024 * 1024
MAX_CPU_REQUEST_MILLIS = 100

_NOT_IN_NAME = re.compile(r"[^a-z0-9-]+")
_NOT_IN_LABEL = re.compile(r"[^A-Za-z0-9_.-]+")
_LABEL_ENDS = re.compile(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")


@dataclass(frozen=True)
class JobOptions:
    """What the cluster's configuration adds to every Job."""

    image_pull_secrets: tuple[str, ...] = ()
    ttl_seconds_after_finished: int | None = 86400
    service_account: str | None = None
    termination_grace_seconds: int = 10


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def job_name(name: str) -> str:
    """``name`` as a DNS-1123 label, deterministically; a hash marks any change."""
    if len(name) <= MAX_NAME_CHARS and _DNS_LABEL.match(name):
        return name
    cleaned = _NOT_IN_NAME.sub("-", name.lower()).strip("-") or "craton"
    return f"{cleaned[: MAX_NAME_CHARS - 9].rstrip('-')}-{_digest(name)}"


def label_value(value: str) -> str:
    """``value`` cut to a valid label value (63 characters, alphanumeric at both ends)."""
    cleaned = _LABEL_ENDS.sub("", _NOT_IN_LABEL.sub("-", value))
    return _LABEL_ENDS.sub("", cleaned[:MAX_NAME_CHARS])


def label_key(key: str) -> str:
    """``key`` made valid: an optional DNS prefix and a name of at most 63 characters."""
    prefix, _, name = key.rpartition("/")
    name = label_value(name) or "label"
    if not prefix:
        return name
    parts = (_NOT_IN_NAME.sub("-", part).strip("-") for part in prefix.lower().split("."))
    prefix = ".".join(part for part in parts if part)[:253]
    if not prefix:
        return name
    return f"{prefix}/{name}"


def job_labels(spec: ContainerSpec) -> dict[str, str]:
    """The labels of the Job and its pod: the spec's, valid, with the platform's own."""
    labels = {label_key(key): label_value(value) for key, value in spec.labels.items()}
    labels[MANAGED_LABEL] = "true"
    labels[NETWORK_LABEL] = "default" if spec.network else "none"
    return labels


def _quantities(spec: ContainerSpec) -> tuple[dict[str, str], dict[str, str]]:
    limits: dict[str, str] = {}
    requests: dict[str, str] = {}
    if spec.limits.memory_bytes is not None:
        limits["memory"] = requests["memory"] = str(spec.limits.memory_bytes)
    if spec.limits.nano_cpus is not None:
        millis = max(1, math.ceil(spec.limits.nano_cpus / 1_000_000))
        limits["cpu"] = f"{millis}m"
        requests["cpu"] = f"{min(millis, MAX_CPU_REQUEST_MILLIS)}m"
    return limits, requests


def _tmp_bytes(spec: ContainerSpec) -> int:
    tmpfs_bytes = getattr(spec.limits, "tmpfs_bytes", DEFAULT_TMP_BYTES)
    return DEFAULT_TMP_BYTES if tmpfs_bytes is None else tmpfs_bytes


def _env_keys(spec: ContainerSpec) -> list[tuple[str, str]]:
    """(variable, key in the Secret) of each variable: its own name where a Secret
    key may have it, else its position."""
    return [
        (name, name if _SECRET_KEY.match(name) else f"env-{index}")
        for index, name in enumerate(spec.env)
    ]


def _env(spec: ContainerSpec) -> list[dict[str, Any]]:
    secret = job_name(spec.name)
    return [
        {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
        for name, key in _env_keys(spec)
    ]


def env_secret_manifest(spec: ContainerSpec, job_uid: str) -> dict[str, Any]:
    """The Secret holding the run's environment, owned by its Job (that uid)."""
    name = job_name(spec.name)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "labels": job_labels(spec),
            "ownerReferences": [
                {"apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": job_uid}
            ],
        },
        "type": "Opaque",
        "immutable": True,
        "data": {
            key: base64.b64encode(spec.env[name].encode()).decode() for name, key in _env_keys(spec)
        },
    }


def env_secret_of(pod_spec: Any) -> str | None:
    """The Secret a Job's pod template takes its environment from (client models)."""
    for container in getattr(pod_spec, "containers", None) or []:
        for variable in container.env or []:
            ref = variable.value_from.secret_key_ref if variable.value_from else None
            if ref is not None:
                return str(ref.name)
    return None


def _container(spec: ContainerSpec) -> dict[str, Any]:
    limits, requests = _quantities(spec)
    return {
        "name": CONTAINER_NAME,
        "image": spec.image,
        "args": list(spec.command),
        "env": _env(spec),
        "resources": {"limits": limits, "requests": requests},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": USER_ID,
            "runAsGroup": USER_ID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        "stdin": False,
        "tty": False,
    }


CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"


def _node_requirement(rule: str) -> dict[str, Any]:
    """One Swarm-style placement constraint as a node selector requirement."""
    attribute, operator, value = parse_placement(rule)
    if attribute == "node.role":
        manager = (value == "manager") == (operator == "==")
        return {"key": CONTROL_PLANE_LABEL, "operator": "Exists" if manager else "DoesNotExist"}
    key = (
        "kubernetes.io/hostname"
        if attribute == "node.hostname"
        else attribute.removeprefix("node.labels.")
    )
    return {"key": key, "operator": "In" if operator == "==" else "NotIn", "values": [value]}


def _affinity(spec: ContainerSpec) -> dict[str, Any] | None:
    """The task's placement as required node affinity (all constraints must hold)."""
    if not spec.placement:
        return None
    terms = [{"matchExpressions": [_node_requirement(rule) for rule in spec.placement]}]
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}
        }
    }


def _pod_spec(spec: ContainerSpec, options: JobOptions) -> dict[str, Any]:
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": options.termination_grace_seconds,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": USER_ID,
            "runAsGroup": USER_ID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [_container(spec)],
        "volumes": [
            {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": str(_tmp_bytes(spec))}}
        ],
    }
    affinity = _affinity(spec)
    if affinity:
        pod["affinity"] = affinity
    if options.service_account:
        pod["serviceAccountName"] = options.service_account
    if options.image_pull_secrets:
        pod["imagePullSecrets"] = [{"name": name} for name in options.image_pull_secrets]
    return pod


def job_manifest(spec: ContainerSpec, options: JobOptions) -> dict[str, Any]:
    """The suspended ``batch/v1`` Job of one run attempt."""
    labels = job_labels(spec)
    annotations = {LABELS_ANNOTATION: json.dumps(dict(spec.labels), sort_keys=True)}
    job_spec: dict[str, Any] = {
        "backoffLimit": 0,
        "completions": 1,
        "parallelism": 1,
        "suspend": True,
        "template": {
            "metadata": {"labels": dict(labels), "annotations": dict(annotations)},
            "spec": _pod_spec(spec, options),
        },
    }
    if spec.timeout_seconds:
        job_spec["activeDeadlineSeconds"] = int(spec.timeout_seconds)
    if options.ttl_seconds_after_finished is not None:
        job_spec["ttlSecondsAfterFinished"] = options.ttl_seconds_after_finished
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": job_name(spec.name), "labels": labels, "annotations": annotations},
        "spec": job_spec,
    }


def labels_of(metadata: Any) -> dict[str, str]:
    """The labels a Job was created with, from its annotation (its labels if none)."""
    annotations = getattr(metadata, "annotations", None) or {}
    labels = dict(getattr(metadata, "labels", None) or {})
    try:
        original = json.loads(annotations[LABELS_ANNOTATION])
    except (KeyError, TypeError, ValueError):
        return labels
    if not isinstance(original, dict):
        return labels
    return {**{str(k): str(v) for k, v in original.items()}, MANAGED_LABEL: "true"}
