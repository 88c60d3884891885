"""A run's environment (its secrets, ``CRATON_TOKEN``) reaches the task from a Secret
owned by its Job, never as plain values in the Job, and goes when the Job goes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from craton_wf.errors import ContainerNotFound, ExecutorError
from craton_wf.executors.base import ContainerSpec, LogLine
from craton_wf.executors.kubernetes import KubernetesExecutor
from tests.kubefake import FakeKubernetes
from tests.kubernetes.conftest import make_executor

ENV = {
    "CRATON_TOKEN": "cwf_t0ken-of-the-run",
    "API_KEY": "hunter2-api-key",
    "CRATON_URL": "http://api.example:7780",
}


def texts(lines: list[LogLine]) -> list[str]:
    return [line.text for line in lines]


def _secret(core: Any, name: str, namespace: str) -> Any:
    try:
        return core.read_namespaced_secret(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def _gone(core: Any, name: str, namespace: str, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _secret(core, name, namespace) is None:
            return True
        time.sleep(0.1)
    return False


def test_the_job_holds_no_value_the_task_reads_them_from_its_secret(
    executor: KubernetesExecutor,
    make_spec: Callable[..., ContainerSpec],
    api: tuple[Any, Any],
) -> None:
    batch, core = api
    spec = make_spec('printf "%s|%s|%s\\n" "$CRATON_TOKEN" "$API_KEY" "$CRATON_URL"', env=ENV)
    handle = executor.create(spec)
    try:
        raw = batch.read_namespaced_job(handle.name, executor.namespace, _preload_content=False)
        stored = raw.data.decode()
        job = batch.read_namespaced_job(handle.name, executor.namespace)
        secret = core.read_namespaced_secret(handle.name, executor.namespace)
        executor.start(handle)
        lines = texts(list(executor.logs(handle)))
        assert executor.wait(handle, timeout=60) == 0
    finally:
        executor.remove(handle)

    for value in ENV.values():
        assert value not in stored
    (container,) = job.spec.template.spec.containers
    assert [(e.name, e.value) for e in container.env] == [(name, None) for name in ENV]
    refs = [e.value_from.secret_key_ref for e in container.env]
    assert [(r.name, r.key) for r in refs] == [(handle.name, name) for name in ENV]
    assert [(o.kind, o.name, o.uid) for o in secret.metadata.owner_references] == [
        ("Job", handle.name, handle.id)
    ]
    assert secret.immutable is True
    assert lines == ["|".join(ENV.values())]
    assert _gone(core, handle.name, executor.namespace), "the Secret outlived its Job"


def test_a_job_without_environment_gets_no_secret(
    executor: KubernetesExecutor, make_spec: Callable[..., ContainerSpec], api: tuple[Any, Any]
) -> None:
    handle = executor.create(make_spec("true"))
    try:
        assert _secret(api[1], handle.name, executor.namespace) is None
    finally:
        executor.remove(handle)


def test_a_job_whose_runner_stopped_before_its_secret_is_removed_not_started(
    cluster: FakeKubernetes | None,
    executor: KubernetesExecutor,
    make_spec: Callable[..., ContainerSpec],
    api: tuple[Any, Any],
) -> None:
    batch, core = api
    handle = executor.create(make_spec("echo ran", env=ENV))
    core.delete_namespaced_secret(handle.name, executor.namespace)  # as if never made
    adopter = make_executor(cluster)
    try:
        found = adopter.find(handle.name)
        assert found is not None
        with pytest.raises(ContainerNotFound, match="no Secret"):
            adopter.start(found)
        deadline = time.monotonic() + 30
        while adopter.find(handle.name) is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert adopter.find(handle.name) is None
    finally:
        adopter.remove(handle)
        adopter.close()


def test_a_secret_that_cannot_be_made_takes_its_job_with_it(
    executor: KubernetesExecutor,
    make_spec: Callable[..., ContainerSpec],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(_secret: Any) -> None:
        raise ApiException(status=403, reason="Forbidden")

    monkeypatch.setattr(executor, "_post_secret", refuse)
    spec = make_spec("true", env=ENV)
    with pytest.raises(ExecutorError, match="could not create Secret .*403"):
        executor.create(spec)
    deadline = time.monotonic() + 30
    while executor.find(spec.name) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert executor.find(spec.name) is None


def test_a_stale_secret_of_the_same_name_is_replaced(
    executor: KubernetesExecutor, make_spec: Callable[..., ContainerSpec], api: tuple[Any, Any]
) -> None:
    spec = make_spec('printf "%s\\n" "$API_KEY"', env={"API_KEY": "fresh"})
    name = spec.name
    stale = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "stringData": {"API_KEY": "stale"},
    }
    api[1].create_namespaced_secret(executor.namespace, stale)
    handle = executor.create(spec)
    try:
        secret = api[1].read_namespaced_secret(handle.name, executor.namespace)
        executor.start(handle)
        assert texts(list(executor.logs(handle))) == ["fresh"]
    finally:
        executor.remove(handle)
    assert [o.uid for o in secret.metadata.owner_references] == [handle.id]
