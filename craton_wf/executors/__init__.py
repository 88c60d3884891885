"""Executors: where a run's container lives (local Docker engine, Swarm, Kubernetes).

Only modules of this package import container SDKs. ``make_executor`` picks
the implementation named by the settings. The Kubernetes client is an extra
(``craton-wf[kubernetes]``): it is imported only when that executor is chosen,
and its absence is an error naming the extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from craton_wf.errors import ExecutorError

if TYPE_CHECKING:
    from craton_wf.executors.base import Executor
    from craton_wf.settings import Settings


def make_executor(settings: Settings) -> Executor:
    if settings.executor == "docker":
        from craton_wf.executors.docker import DockerExecutor

        return DockerExecutor.from_settings(settings)
    if settings.executor == "swarm":
        from craton_wf.executors.swarm import SwarmExecutor

        return SwarmExecutor.from_settings(settings)
    if settings.executor == "kubernetes":
        try:
            from craton_wf.executors.kubernetes import KubernetesExecutor
        except ModuleNotFoundError as exc:
            if exc.name is None or exc.name.split(".")[0] != "kubernetes":
                raise
            raise ExecutorError(
                "CRATON_WF_EXECUTOR=kubernetes needs the Kubernetes client: "
                "pip install 'craton-wf[kubernetes]'"
            ) from exc
        return KubernetesExecutor.from_settings(settings)
    if settings.executor == "fake":
        from craton_wf.executors.fake import FakeExecutor

        return FakeExecutor()
    raise ValueError(f"unknown executor {settings.executor!r}")
