"""The labels every container (swarm service, Kubernetes Job) of a run carries.

Set when a run is claimed (``engine.claims``); read back to adopt a container
(``runner.execution``: ours only if its run uid is this run's), to list the
platform's containers (``Executor.managed`` selects by the run uid) and to
judge which of them may be swept (``engine.sweeping``).
"""

from __future__ import annotations

PROJECT_LABEL = "craton.project"
JOB_LABEL = "craton.job"
HOST_LABEL = "craton.host"
RUN_LABEL = "craton.run"
# Unique across databases sharing one container runtime (run ids are not).
RUN_UID_LABEL = "craton.run-uid"
ATTEMPT_LABEL = "craton.attempt"
STEP_LABEL = "craton.step"
