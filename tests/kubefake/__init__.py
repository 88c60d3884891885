"""A fake Kubernetes API server, for testing the Kubernetes executor without a cluster.

It is a real HTTP server on loopback that answers the REST calls the official
client makes for Jobs and pods, in the API server's own shapes: ``Status``
errors (404 NotFound, 409 AlreadyExists and failed preconditions, 422
Invalid), resource versions, list and ``watch=true`` streams of
``{"type", "object"}`` lines with label and field selectors, strategic-merge
and JSON patches, deletes with ``propagationPolicy``, ``gracePeriodSeconds``
and uid preconditions (graceful pod deletes answer with the pod), and pod
logs with ``follow``, ``timestamps``, ``sinceTime``, ``sinceSeconds`` and
``tailLines``, chunked as the kubelet streams them.

Behind it a small Job controller and kubelet: a Job that is not suspended
gets one pod named ``<job>-<5 letters>``, labelled ``job-name`` and
``controller-uid`` and owned by the Job; the pod starts shortly after and its
container runs ``program`` (by default :func:`~tests.kubefake.shell.run_shell`,
which interprets the container's ``sh -c`` script) in a thread. Its output is
stamped per line with nanosecond RFC 3339 stamps; its exit code becomes the
container's ``terminated.exitCode``, and the Job becomes Complete or, past
``backoffLimit``, Failed. ``activeDeadlineSeconds`` fails the Job with
``DeadlineExceeded`` and deletes its pods; ``ttlSecondsAfterFinished``
deletes a finished Job. Deleting a running pod sends SIGTERM, then SIGKILL
(exit 137) after the grace period; Foreground deletion keeps the Job (with a
deletion timestamp) until its pods are gone, Background deletes them after
the Job, and Orphan (the API's default for Jobs) leaves them. An image whose
name contains one of ``missing_images`` never pulls (``ErrImagePull``).

Container logs rotate as the kubelet rotates them when ``log_max_bytes`` is
set (its ``containerLogMaxSize``): a read opened sees the current file only,
and a follow stream that has read its file to the end goes on with the file
current then, skipping any rotated away meanwhile. ``cut_log_streams`` ends
every open stream (or drops its connection) and ``log_streams_stalled``
holds them, as a kubelet or API server restarting would.

It lives in ``tests/``: a test fake, not part of the shipped package.

v1 Secrets are kept too (create, get, list, delete; ``stringData`` merged into
``data``); the garbage collector deletes a Secret whose owners (Jobs, by
name and uid) are all gone, and the kubelet resolves ``secretKeyRef``
variables from them, a container whose Secret or key is missing waiting
with ``CreateContainerConfigError`` until it appears.

Every Job POSTed is kept in ``created`` as received, every Secret in
``created_secrets``, for tests to inspect.

Modules: ``cluster`` (the REST API), ``controller`` (the objects, the Job
controller and the kubelet), ``protocol`` (errors, selectors, patches,
checks), ``server`` (HTTP), ``shell`` (what containers run).
"""

from tests.kubefake.cluster import FakeKubernetes
from tests.kubefake.controller import FakeContainer, Program

__all__ = ["FakeContainer", "FakeKubernetes", "Program"]
