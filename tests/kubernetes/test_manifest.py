"""The Job manifest on its own: valid for the Kubernetes schemas, restricted, deterministic."""

from __future__ import annotations

import re

import pytest

from craton_wf.executors.base import ContainerSpec, Limits
from craton_wf.executors.kubemanifest import (
    JobOptions,
    env_secret_manifest,
    job_manifest,
    job_name,
    label_key,
    label_value,
)
from tests.kubernetes.conftest import validate_manifest

SPECS = {
    "plain": ContainerSpec(name="craton-run-1-1-0123456789ab", image="busybox", command=["true"]),
    "everything": ContainerSpec(
        name="craton-run-12-3-0123456789ab",
        image="registry.example:5000/craton-task/audit@sha256:" + "0" * 64,
        command=["python", "/craton/audit.py", '{"host": "a b"}'],
        labels={"craton.project": "p-1", "craton.host": "", "craton.step": "Drain & patch!"},
        env={"CRATON_URL": "http://api", "CRATON_TOKEN": "t"},
        network=True,
        limits=Limits(memory_bytes=2**30, nano_cpus=2_500_000_000, pids=100),
        timeout_seconds=3600,
        placement=("node.labels.zone==a", "node.hostname!=bad-node", "node.role==worker"),
    ),
    "unlimited": ContainerSpec(
        name="Weird_Name." + "x" * 90,
        image="busybox",
        command=[],
        limits=Limits(memory_bytes=None, nano_cpus=None, pids=None),
    ),
}
OPTIONS = JobOptions(
    image_pull_secrets=("regcred", "mirror"),
    ttl_seconds_after_finished=0,
    service_account="craton-task",
    termination_grace_seconds=0,
)


@pytest.mark.parametrize("options", [JobOptions(), OPTIONS], ids=["defaults", "options"])
@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
def test_manifests_are_valid_for_the_kubernetes_schemas(
    spec: ContainerSpec, options: JobOptions
) -> None:
    validate_manifest(job_manifest(spec, options))


@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
def test_the_pod_meets_the_restricted_pod_security_profile(spec: ContainerSpec) -> None:
    pod = job_manifest(spec, OPTIONS)["spec"]["template"]["spec"]

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert not {"hostNetwork", "hostPID", "hostIPC", "hostUsers"} & set(pod)
    assert all(set(volume) == {"name", "emptyDir"} for volume in pod["volumes"])
    for container in pod["containers"]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["privileged"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["readOnlyRootFilesystem"] is True
        assert context["runAsNonRoot"] is True
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
        assert "ports" not in container


def test_the_job_runs_once_with_the_platform_owning_retries() -> None:
    manifest = job_manifest(SPECS["everything"], OPTIONS)
    spec = manifest["spec"]

    assert (spec["backoffLimit"], spec["completions"], spec["parallelism"]) == (0, 1, 1)
    assert spec["suspend"] is True
    assert spec["activeDeadlineSeconds"] == 3600
    assert spec["ttlSecondsAfterFinished"] == 0
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    assert spec["template"]["spec"]["serviceAccountName"] == "craton-task"
    assert "activeDeadlineSeconds" not in job_manifest(SPECS["plain"], OPTIONS)["spec"]


def test_names_are_dns_labels_and_deterministic() -> None:
    for name in ["craton-run-1-1-0123456789ab", "Weird_Name." + "x" * 90, "-a-", "ÄÖ", ""]:
        made = job_name(name)
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", made), made
        assert len(made) <= 63
        assert job_name(name) == made
    assert job_name("craton-run-1-1-0123456789ab") == "craton-run-1-1-0123456789ab"
    assert job_name("A") != job_name("a")


def test_label_values_and_keys_are_cut_to_what_kubernetes_accepts() -> None:
    assert label_value("Drain & patch!") == "Drain-patch"
    assert label_value("") == ""
    assert len(label_value("x" * 100)) == 63
    assert label_value("-" + "y" * 62 + "-z") == "y" * 62
    assert label_key("craton.run-uid") == "craton.run-uid"
    assert label_key("Example.COM/some key") == "example.com/some-key"


def test_placement_is_required_node_affinity() -> None:
    pod = job_manifest(SPECS["everything"], OPTIONS)["spec"]["template"]["spec"]
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"] == [
        {
            "matchExpressions": [
                {"key": "zone", "operator": "In", "values": ["a"]},
                {"key": "kubernetes.io/hostname", "operator": "NotIn", "values": ["bad-node"]},
                {"key": "node-role.kubernetes.io/control-plane", "operator": "DoesNotExist"},
            ]
        }
    ]
    assert "affinity" not in job_manifest(SPECS["plain"], OPTIONS)["spec"]["template"]["spec"]


def test_the_environment_is_only_referenced_from_the_job_and_held_by_its_secret() -> None:
    import base64
    import json

    spec = ContainerSpec(
        name="craton-run-7-1-0123456789ab",
        image="busybox",
        command=["true"],
        env={"CRATON_TOKEN": "cwf_secret-token", "API_KEY": "hunter2", "odd name=": "x"},
    )
    job = job_manifest(spec, JobOptions())
    secret = env_secret_manifest(spec, "5f0c8c39-0000-4000-8000-000000000001")
    validate_manifest(secret)

    assert "cwf_secret-token" not in json.dumps(job) and "hunter2" not in json.dumps(job)
    (container,) = job["spec"]["template"]["spec"]["containers"]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    assert set(refs) == set(spec.env) and all(
        set(e) == {"name", "valueFrom"} for e in container["env"]
    )
    assert {ref["name"] for ref in refs.values()} == {secret["metadata"]["name"]}
    assert secret["metadata"]["name"] == job["metadata"]["name"]
    assert secret["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": job["metadata"]["name"],
            "uid": "5f0c8c39-0000-4000-8000-000000000001",
        }
    ]
    values = {
        name: base64.b64decode(secret["data"][ref["key"]]).decode() for name, ref in refs.items()
    }
    assert values == spec.env
    assert refs["odd name="]["key"] == "env-2"  # not a valid Secret key: by position
