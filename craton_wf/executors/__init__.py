"""Executors: where a run's container lives (local Docker engine, Swarm, Kubernetes).

Only modules of this package import container SDKs. ``make_executor`` picks
the implementation named by the settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
        from craton_wf.executors.kubernetes import KubernetesExecutor

        return KubernetesExecutor.from_settings(settings)
    if settings.executor == "fake":
        from craton_wf.executors.fake import FakeExecutor

        return FakeExecutor()
    raise ValueError(f"unknown executor {settings.executor!r}")
