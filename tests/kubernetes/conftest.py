"""Fixtures for the Kubernetes executor: the fake API server, or a real cluster.

By default every test talks to :class:`~tests.kubefake.FakeKubernetes`
over HTTP with the official client, and every Job manifest the executor
POSTs is validated against the Kubernetes JSON schemas (strict: no unknown
fields) when the test ends. With ``CRATON_WF_TEST_KUBECONFIG`` set the same
tests run against that cluster instead (namespace
``CRATON_WF_TEST_KUBE_NAMESPACE``, default the context's; image
``CRATON_WF_TEST_KUBE_IMAGE``, default ``busybox:1.36``); tests that look
inside the fake skip there. Everything a test creates is removed at its end.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import kubernetes.client
import pytest

from craton_wf.executors.base import ContainerSpec, Handle
from craton_wf.executors.kubernetes import KubernetesExecutor
from tests.kubefake import FakeKubernetes

REAL_KUBECONFIG = os.environ.get("CRATON_WF_TEST_KUBECONFIG") or None
REAL_NAMESPACE = os.environ.get("CRATON_WF_TEST_KUBE_NAMESPACE") or None
IMAGE = os.environ.get("CRATON_WF_TEST_KUBE_IMAGE") or "busybox:1.36"
# The oldest Kubernetes the executor supports, and the newest schemas at hand.
SCHEMA_VERSIONS = ("1.27.0", "latest")
TEST_LABEL = "craton.test"
_counter = itertools.count(1)


def validate_manifest(manifest: dict[str, Any]) -> None:
    """Raise if ``manifest`` is not a valid object for every version in ``SCHEMA_VERSIONS``."""
    import kubernetes_validate

    for version in SCHEMA_VERSIONS:
        wanted = kubernetes_validate.latest_version() if version == "latest" else version
        kubernetes_validate.validate(manifest, wanted, strict=True)


@pytest.fixture
def cluster() -> Iterator[FakeKubernetes | None]:
    """The fake cluster (None against a real one); its manifests are checked at the end."""
    if REAL_KUBECONFIG:
        yield None
        return
    with FakeKubernetes() as fake:
        yield fake
        for manifest in fake.created + fake.created_secrets:
            validate_manifest(manifest)


@pytest.fixture
def fake(cluster: FakeKubernetes | None) -> FakeKubernetes:
    """The fake cluster, for tests that look inside it: skipped against a real cluster."""
    if cluster is None:
        pytest.skip("looks inside the fake API server")
    return cluster


def make_executor(cluster: FakeKubernetes | None, **options: Any) -> KubernetesExecutor:
    """A new executor (a new client) on the test cluster."""
    if cluster is None:
        return KubernetesExecutor(kubeconfig=REAL_KUBECONFIG, namespace=REAL_NAMESPACE, **options)
    configuration = kubernetes.client.Configuration()
    configuration.host = cluster.url
    return KubernetesExecutor(configuration=configuration, namespace="craton-test", **options)


@pytest.fixture
def executor(cluster: FakeKubernetes | None) -> Iterator[KubernetesExecutor]:
    executor = make_executor(cluster)
    yield executor
    executor.close()


@pytest.fixture
def session_label() -> dict[str, str]:
    return {TEST_LABEL: uuid.uuid4().hex[:10]}


@pytest.fixture
def make_spec(session_label: dict[str, str]) -> Callable[..., ContainerSpec]:
    """A spec running ``script`` with ``sh -c`` (the payload is ``$1``), named like a run's."""

    def make(script: str, payload: str = "{}", **kwargs: Any) -> ContainerSpec:
        uid = uuid.uuid4().hex[:12]
        labels = {**session_label, "craton.run-uid": uid, **kwargs.pop("labels", {})}
        return ContainerSpec(
            name=kwargs.pop("name", f"craton-run-{next(_counter)}-1-{uid}"),
            image=kwargs.pop("image", IMAGE),
            command=["sh", "-c", script, "sh", payload],
            labels=labels,
            **kwargs,
        )

    return make


Runner = Callable[..., Handle]


@pytest.fixture
def run(executor: KubernetesExecutor, make_spec: Callable[..., ContainerSpec]) -> Iterator[Runner]:
    """Create and start a Job running ``script``; removed after the test."""
    handles: list[Handle] = []

    def start(script: str, **kwargs: Any) -> Handle:
        handle = executor.create(make_spec(script, **kwargs))
        handles.append(handle)
        executor.start(handle)
        return handle

    yield start
    for handle in handles:
        executor.remove(handle)


@pytest.fixture
def api(executor: KubernetesExecutor) -> tuple[Any, Any]:
    """The official client's batch and core APIs on the same cluster, to look as a user would."""
    return kubernetes.client.BatchV1Api(executor.client), kubernetes.client.CoreV1Api(
        executor.client
    )
