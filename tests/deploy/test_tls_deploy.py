"""Certificates in the Helm chart and the Swarm stack: the API over https, mutual
TLS, and PostgreSQL over TLS, each mounted from a Secret and named in the settings.

The chart is rendered by a real ``helm`` and validated against the Kubernetes
schemas (``test_helm_chart``'s helpers); the stack files are merged by the
Docker CLI (``docker stack config``). The health check of the stack and of
the image is run against a live ``serve`` over http, https and mutual TLS.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.certificates import make_ca
from tests.deploy.test_helm_chart import (
    CHART,
    FULLNAME,
    KUBERNETES_VERSION,
    NAMESPACE,
    REQUIRED,
    find,
    helm,
    helm_env,  # noqa: F401 - a fixture of this module's tests too
    pod_specs,
    render,
)
from tests.deploy.test_swarm_stack import SETTINGS, STACK
from tests.e2e.conftest import ServeTls, start_server, stop

HTTPS = {**REQUIRED, "tls.secretName": "api-tls", "tls.taskCa": "true"}
MUTUAL = {
    **HTTPS,
    "tls.clientCaSecretName": "clients-ca",
    "tls.clientUserField": "CN",
    "databaseTls.secretName": "db-tls",
}


def container(manifests: list[dict[str, Any]], component: str) -> dict[str, Any]:
    kind, name = ("Job", "migrations") if component == "migrations" else ("Deployment", component)
    return find(manifests, kind, f"{FULLNAME}-{name}")["spec"]["template"]["spec"]


def mounted(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Mount path -> the secret volume behind it."""
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = pod["containers"][0]["volumeMounts"]
    return {
        m["mountPath"]: volumes[m["name"]]["secret"]
        for m in mounts
        if "secret" in volumes[m["name"]]
    }


@pytest.fixture(scope="module")
def https_chart(helm_env: dict[str, str]) -> list[dict[str, Any]]:  # noqa: F811
    return render(helm_env, HTTPS)


@pytest.fixture(scope="module")
def mutual_chart(helm_env: dict[str, str]) -> list[dict[str, Any]]:  # noqa: F811
    return render(helm_env, MUTUAL)


@pytest.mark.parametrize("values", [HTTPS, MUTUAL], ids=["https", "mutual-db-tls"])
def test_the_tls_variants_lint_and_are_valid_kubernetes(
    helm_env: dict[str, str],  # noqa: F811
    values: dict[str, str],
) -> None:
    args = [
        f"--set-string={k}={v}" if k.startswith("secrets.") else f"--set={k}={v}"
        for k, v in values.items()
    ]
    done = helm(helm_env, "lint", "--strict", str(CHART), *args)
    assert done.returncode == 0, done.stdout + done.stderr
    for manifest in render(helm_env, values):
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_https_mounts_the_certificate_in_the_api_and_only_its_ca_in_runners(
    https_chart: list[dict[str, Any]],
) -> None:
    config = find(https_chart, "ConfigMap", FULLNAME)["data"]
    assert config["CRATON_WF_PUBLIC_URL"] == f"https://{FULLNAME}.{NAMESPACE}.svc:80"
    assert config["CRATON_WF_TLS_CERT"] == "/etc/craton-wf/tls/tls.crt"
    assert config["CRATON_WF_TLS_KEY"] == "/etc/craton-wf/tls/tls.key"
    assert config["CRATON_WF_TLS_TASK_CA"] == "/etc/craton-wf/tls/ca.crt"
    assert "CRATON_WF_TLS_CLIENT_CA" not in config
    api = mounted(container(https_chart, "api"))
    assert api["/etc/craton-wf/tls"] == {"secretName": "api-tls", "defaultMode": 0o440}
    runner = mounted(container(https_chart, "runner"))
    assert runner["/etc/craton-wf/tls"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}]
    assert "/etc/craton-wf/tls" not in mounted(container(https_chart, "migrations"))
    probes = container(https_chart, "api")["containers"][0]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert probes[probe]["httpGet"]["scheme"] == "HTTPS", probe


def test_mutual_tls_mounts_the_client_ca_and_probes_the_port(
    mutual_chart: list[dict[str, Any]],
) -> None:
    config = find(mutual_chart, "ConfigMap", FULLNAME)["data"]
    assert config["CRATON_WF_TLS_CLIENT_CA"] == "/etc/craton-wf/client-ca/ca.crt"
    assert config["CRATON_WF_TLS_CLIENT_USER_FIELD"] == "CN"
    api = container(mutual_chart, "api")
    assert mounted(api)["/etc/craton-wf/client-ca"]["secretName"] == "clients-ca"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert api["containers"][0][probe]["tcpSocket"] == {"port": "http"}, probe
    assert "/etc/craton-wf/client-ca" not in mounted(container(mutual_chart, "runner"))


def test_every_pod_mounts_the_database_certificates(mutual_chart: list[dict[str, Any]]) -> None:
    pods = dict(pod_specs(mutual_chart))
    assert len(pods) == 3
    for name, pod in pods.items():
        secret = mounted(pod)["/etc/craton-wf/db-tls"]
        assert secret == {"secretName": "db-tls", "defaultMode": 0o440}, name


def test_prometheus_scrapes_the_api_over_https(helm_env: dict[str, str]) -> None:  # noqa: F811
    tls_config = {"ca": {"secret": {"name": "api-tls", "key": "ca.crt"}}}
    values = {
        **HTTPS,
        "metrics.serviceMonitor.enabled": "true",
        "metrics.serviceMonitor.tlsConfig.ca.secret.name": "api-tls",
        "metrics.serviceMonitor.tlsConfig.ca.secret.key": "ca.crt",
    }
    manifests = render(helm_env, values)
    endpoint = find(manifests, "ServiceMonitor", FULLNAME)["spec"]["endpoints"][0]
    assert endpoint["scheme"] == "https" and endpoint["tlsConfig"] == tls_config
    api = find(manifests, "Deployment", f"{FULLNAME}-api")["spec"]["template"]["metadata"]
    assert api["annotations"]["prometheus.io/scheme"] == "https"
    runner = find(manifests, "Deployment", f"{FULLNAME}-runner")["spec"]["template"]["metadata"]
    assert "prometheus.io/scheme" not in runner["annotations"]  # a runner's own port is http


def test_no_certificate_is_mounted_by_default(helm_env: dict[str, str]) -> None:  # noqa: F811
    manifests = render(helm_env, REQUIRED)
    assert not any(
        key.startswith("CRATON_WF_TLS") for key in find(manifests, "ConfigMap", FULLNAME)["data"]
    )
    for name, pod in pod_specs(manifests):
        assert not mounted(pod), name


def test_a_client_ca_without_the_apis_certificate_is_refused(
    helm_env: dict[str, str],  # noqa: F811
) -> None:
    done = helm(
        helm_env,
        "template",
        "cwf",
        str(CHART),
        *[f"--set={k}={v}" for k, v in {**REQUIRED, "tls.clientCaSecretName": "ca"}.items()],
    )
    assert done.returncode != 0
    assert "tls.clientCaSecretName needs tls.secretName" in done.stderr


# -- the Swarm stack ----------------------------------------------------------


def stack(*overlays: str, **env: str) -> dict[str, Any]:
    """The main stack file with ``overlays`` (``tls`` for craton-wf.tls.stack.yml ...)
    merged on top by ``docker stack config``, as ``docker stack deploy -c … -c …`` would."""
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker CLI")
    files = [STACK, *(STACK.with_name(f"craton-wf.{name}.stack.yml") for name in overlays)]
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CRATON_WF_", "DOCKER_G"))}
    done = subprocess.run(
        [docker, "stack", "config", *(arg for f in files for arg in ("-c", str(f)))],
        capture_output=True,
        text=True,
        env={**clean, **SETTINGS, **env},
        timeout=60,
        check=False,
    )
    if done.returncode and "unknown command" in done.stderr:
        pytest.skip("this docker CLI has no 'stack config' (Docker 20.10 or newer has)")
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)["services"]


def secrets_of(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["source"]: s for s in service["secrets"]}


def test_the_https_overlay_gives_the_api_its_certificate_readable_by_it_only() -> None:
    services = stack("tls", CRATON_WF_PUBLIC_URL="https://node1.example.com:7780")
    api = services["api"]
    assert api["environment"]["CRATON_WF_TLS_CERT"] == "/run/secrets/craton_wf_tls_cert"
    assert api["environment"]["CRATON_WF_TLS_KEY"] == "/run/secrets/craton_wf_tls_key"
    for name in ("craton_wf_tls_cert", "craton_wf_tls_key"):
        assert secrets_of(api)[name] | {"mode": oct(secrets_of(api)[name]["mode"])} == {
            "source": name,
            "target": name,
            "uid": "10001",
            "gid": "10001",
            "mode": "0o400",
        }
    assert "craton_wf_tls_key" not in secrets_of(services["runner"])  # runners need no key
    assert services["runner"]["environment"]["CRATON_WF_PUBLIC_URL"].startswith("https://")


def test_the_mutual_overlay_adds_the_client_ca() -> None:
    api = stack("tls", "mtls", CRATON_WF_TLS_CLIENT_USER_FIELD="CN")["api"]
    assert api["environment"]["CRATON_WF_TLS_CLIENT_CA"] == "/run/secrets/craton_wf_tls_client_ca"
    assert api["environment"]["CRATON_WF_TLS_CLIENT_USER_FIELD"] == "CN"
    assert {"craton_wf_tls_cert", "craton_wf_tls_client_ca"} <= set(secrets_of(api))


def test_the_database_overlay_mounts_its_certificates_in_every_service() -> None:
    services = stack("db-tls")
    for name in ("migrate", "api", "runner"):
        secrets = secrets_of(services[name])
        assert {"craton_wf_database_url", "craton_wf_db_ca", "craton_wf_db_cert"} <= set(secrets)
        assert secrets["craton_wf_db_key"]["mode"] == 0o400, name  # libpq's rule for keys
        assert secrets["craton_wf_db_key"]["uid"] == "10001", name


def healthcheck_command(source: str) -> list[str]:
    """The API's health check of the stack file or of the image, as a container runs it."""
    if source == "stack":
        test = yaml.safe_load(STACK.read_text())["services"]["api"]["healthcheck"]["test"]
    else:
        dockerfile = (STACK.parents[2] / "Dockerfile").read_text()
        test = [
            "CMD",
            *json.loads(dockerfile.split("HEALTHCHECK", 1)[1].split("CMD", 1)[1].split("\n")[0]),
        ]
    assert test[:2] == ["CMD", "python3"], test
    return [sys.executable, *test[2:]]


@pytest.fixture
def tls_files(tmp_path: Path) -> ServeTls:
    ca = make_ca(tmp_path / "pki")
    server, client = ca.issue("localhost", server=True), ca.issue("root")
    return ServeTls(
        server.cert, server.key, ca.cert, client_ca=ca.cert, client=(client.cert, client.key)
    )


@pytest.mark.parametrize("source", ["stack", "image"])
@pytest.mark.parametrize("mode", ["http", "https", "mutual"])
def test_the_health_check_passes_over_http_https_and_mutual_tls(
    database_url: str, tmp_path: Path, tls_files: ServeTls, mode: str, source: str
) -> None:
    tls = {
        "http": None,
        "https": ServeTls(tls_files.cert, tls_files.key, tls_files.ca),
        "mutual": tls_files,
    }[mode]
    server = start_server(database_url, tmp_path, embedded=True, tls=tls, executor="fake")
    env = {"PATH": os.environ["PATH"], "CRATON_WF_API_PORT": server.env["CRATON_WF_API_PORT"]}
    if tls is not None:
        env |= {"CRATON_WF_TLS_CERT": str(tls.cert), "CRATON_WF_TLS_KEY": str(tls.key)}
    if tls is not None and tls.client_ca is not None:
        env["CRATON_WF_TLS_CLIENT_CA"] = str(tls.client_ca)
    try:
        done = subprocess.run(healthcheck_command(source), env=env, capture_output=True, timeout=30)
        assert done.returncode == 0, done.stderr
    finally:
        stop(server.processes)
    done = subprocess.run(healthcheck_command(source), env=env, capture_output=True, timeout=30)
    assert done.returncode != 0, "the check fails once the API is gone"
