"""The files to deploy Tollgate hold up as far as this machine can check them (no image
can be built or pulled here): the Dockerfile passes hadolint and says what an operator
relies on, every Kubernetes manifest validates against Kubernetes' own schemas, the
compose file parses against the compose specification, and the config they all carry is
a valid Tollgate config whose drain fits inside each orchestrator's grace period."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from compose_spec import PyCompose

from proxy.config.checks import parse_checked

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
KUBERNETES_VERSION = "1.37.0"
ENV = {
    "TOLLGATE_ADMIN_KEY": "admin-key",
    "WEB_APP_KEY": "web-app-key",
    "TOLLGATE_LEDGER_URL": "postgresql://tollgate@postgres:5432/tollgate",
    "TOLLGATE_STATE_URL": "redis://redis:6379/0",
}


def hadolint(path: Path) -> subprocess.CompletedProcess:
    binary = Path(sys.executable).parent / "hadolint"
    return subprocess.run(
        [str(binary), "--failure-threshold", "info", str(path)], capture_output=True, text=True, check=False
    )


def manifests() -> dict[str, dict]:
    found = {}
    for path in sorted(KUBERNETES.glob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        if document.get("kind") != "Kustomization":
            found[document["kind"]] = document
    return found


def deploy_config():
    return parse_checked((DEPLOY / "config.yaml").read_text(), ENV, source="deploy/config.yaml").config


# --- Dockerfile ---------------------------------------------------------------------------


def test_the_dockerfile_passes_hadolint_without_a_finding() -> None:
    result = hadolint(ROOT / "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_does_find_what_it_is_there_to_find(tmp_path) -> None:
    broken = tmp_path / "Dockerfile"
    broken.write_text("FROM python:latest\nRUN pip install tollgate\nCMD tollgate serve\n")
    result = hadolint(broken)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # the `latest` tag
    assert "DL3025" in result.stdout  # CMD in shell form


def test_the_image_runs_tollgate_serve_as_pid_1_as_a_non_root_user() -> None:
    lines = _instructions((ROOT / "Dockerfile").read_text())
    final_stage = lines[max(i for i, line in enumerate(lines) if line.startswith("FROM ")) :]
    assert re.match(r"FROM python:3\.\d+-slim", final_stage[0])
    user = next(line for line in final_stage if line.startswith("USER "))
    assert user.split()[1].split(":")[0] not in ("root", "0")
    entrypoint = next(line for line in final_stage if line.startswith("ENTRYPOINT "))
    assert yaml.safe_load(entrypoint.removeprefix("ENTRYPOINT ")) == ["tollgate", "serve"]  # exec form: PID 1
    assert "STOPSIGNAL SIGTERM" in final_stage
    healthcheck = next(line for line in final_stage if line.startswith("HEALTHCHECK "))
    assert "/readyz" in healthcheck


def _instructions(text: str) -> list[str]:
    joined = re.sub(r"\\\n\s*", " ", text)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


# --- Kubernetes ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(KUBERNETES.glob("*.yaml")), ids=lambda path: path.name)
def test_each_manifest_validates_against_the_kubernetes_schemas(path: Path) -> None:
    document = yaml.safe_load(path.read_text())
    if document["kind"] == "Kustomization":  # kustomize's own file, not a Kubernetes resource
        assert {Path(resource).name for resource in document["resources"]} <= {p.name for p in KUBERNETES.glob("*")}
        return
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_validator_refuses_a_manifest_kubernetes_would_refuse() -> None:
    deployment = manifests()["Deployment"]
    broken = {**deployment, "spec": {**deployment["spec"], "replicas": "two"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_the_deployment_probes_drains_and_reads_its_secrets_as_documented() -> None:
    resources = manifests()
    pod = resources["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    pause_s = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    config = deploy_config()
    # The pod is killed at the end of its grace period: the pause, the drain and the ledger's flush fit before it.
    stopping_s = pause_s + config.server.drain_timeout_s + config.ledger.drain_timeout_s
    assert pod["terminationGracePeriodSeconds"] > stopping_s
    secret = resources["Secret"]["metadata"]["name"]
    assert {"secretRef": {"name": secret}} in container["envFrom"]
    assert set(resources["Secret"]["stringData"]) == {"TOLLGATE_ADMIN_KEY", "WEB_APP_KEY", "OPENAI_API_KEY"}
    mounted = {volume["name"]: volume for volume in pod["volumes"]}
    config_mount = next(m for m in container["volumeMounts"] if m["mountPath"] == "/etc/tollgate")
    assert "subPath" not in config_mount  # a subPath mount never sees a ConfigMap update
    assert mounted[config_mount["name"]]["configMap"]["name"] == resources["ConfigMap"]["metadata"]["name"]


def test_the_service_pdb_and_autoscaler_all_point_at_the_deployment() -> None:
    resources = manifests()
    labels = resources["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert resources["Service"]["spec"]["selector"].items() <= labels.items()
    assert resources["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    target = resources["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", resources["Deployment"]["metadata"]["name"])


def test_the_configmap_carries_deploy_config_yaml_with_watch_config_on() -> None:
    configmap = manifests()["ConfigMap"]
    assert configmap["data"]["config.yaml"] == (DEPLOY / "config.yaml").read_text()
    config = deploy_config()
    assert config.server.watch_config is True
    assert config.ledger.url.startswith("postgresql://") and config.state.url.startswith("redis://")


def test_the_deployed_config_reads_every_secret_from_the_environment() -> None:
    text = (DEPLOY / "config.yaml").read_text()
    for name in ("TOLLGATE_ADMIN_KEY", "WEB_APP_KEY"):
        assert f"${{{name}}}" in text
    for value in ENV.values():
        assert value not in text


# --- compose ------------------------------------------------------------------------------


def test_the_compose_file_parses_against_the_compose_specification() -> None:
    compose = PyCompose.from_yaml((DEPLOY / "compose.yaml").read_text())
    services = set(compose.service_names())
    assert {"tollgate-a", "tollgate-b", "nginx", "postgres", "redis", "prometheus", "grafana"} <= services


def test_the_compose_specification_parser_refuses_a_wrong_field() -> None:
    broken = (DEPLOY / "compose.yaml").read_text().replace("stop_grace_period:", "stop_grace_periods:")
    with pytest.raises(ValueError, match="stop_grace_periods"):
        PyCompose.from_yaml(broken)


def test_compose_mounts_files_that_exist_and_scrapes_both_replicas() -> None:
    document = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    for name, service in document["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts {source}, which is not in the repository"
    services = document["services"]
    replicas = {name for name, service in services.items() if service.get("image", "").startswith("tollgate")}
    scrape = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())["scrape_configs"][0]["static_configs"][0]
    assert {target.split(":")[0] for target in scrape["targets"]} == replicas
    grace_s = int(document["x-tollgate"]["stop_grace_period"].removesuffix("s"))
    config = deploy_config()
    assert grace_s > config.server.drain_timeout_s + config.ledger.drain_timeout_s


def test_prometheus_accepts_the_scrape_config() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: the README's test command installs Debian's prometheus package"
    command = [promtool, "check", "config", str(DEPLOY / "prometheus.yml")]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_nginx_accepts_the_load_balancer_config(tmp_path) -> None:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    assert Path(nginx).exists(), "nginx is missing: the README's test command installs Debian's nginx package"
    # The compose service names resolve only on the compose network: here they stand for loopback.
    text = re.sub(r"server tollgate-[ab]:", "server 127.0.0.1:", (DEPLOY / "nginx.conf").read_text())
    (tmp_path / "logs").mkdir()
    (tmp_path / "nginx.conf").write_text(text)
    result = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-g", "pid nginx.pid;"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
