"""Offline checks of the deployment files: Dockerfile, docker-compose.yml, Prometheus, Grafana and
the Kubernetes manifests. Nothing here starts a container or talks to a cluster.

Needs the ``kubernetes-validate`` package (which brings PyYAML) and, for the compose check, the
``docker-compose`` executable (Debian: ``apt-get install -y --no-install-recommends
docker-compose``) or the ``docker compose`` plugin. Without either, that one test is skipped with
the reason on a developer machine and fails under CI (``CI`` set), so it never silently passes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from parley.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
GRAFANA = DEPLOY / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "parley.json"

# Every metric the dashboard must chart (implemented in parley with exactly these names).
METRICS = [
    "parley_events_total",
    "parley_handler_seconds",
    "parley_llm_seconds",
    "parley_llm_first_token_seconds",
    "parley_llm_tokens_total",
    "parley_llm_errors_total",
    "parley_tool_seconds",
    "parley_tool_errors_total",
    "parley_dead_letters_total",
    "parley_turns_in_flight",
    "parley_websocket_connections",
    "parley_consumer_lag",
]
HISTOGRAMS = {"parley_handler_seconds", "parley_llm_seconds", "parley_llm_first_token_seconds",
              "parley_tool_seconds"}

# Kubernetes versions the manifests must validate against: the newest schema the installed
# kubernetes-validate ships, and an older still-common one.
K8S_VERSIONS = [kubernetes_validate.latest_version(), "1.29.0"]

SETTINGS_ENV = {f"PARLEY_{name.upper()}" for name in Settings.model_fields}
REQUIRED_SERVICE_ENV = {
    "PARLEY_KAFKA_URL": "kafka://kafka:9092",
    "PARLEY_MONGO_URL": "mongodb://mongo:27017",
    "PARLEY_REDIS_URL": "redis://redis:6379/0",
    "PARLEY_WEB_HOST": "0.0.0.0",
    "PARLEY_CONSUMER_FETCH_WAIT_MS": "100",
}
PASSED_FROM_HOST = ("PARLEY_LLM_API_KEY", "PARLEY_LLM_BASE_URL", "PARLEY_LLM_MODEL")


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text("utf-8"))


def _compose() -> dict[str, Any]:
    data = _yaml(COMPOSE)
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)
    return data


def _manifest_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def _manifests() -> list[tuple[Path, dict[str, Any]]]:
    docs = []
    for path in _manifest_files():
        for doc in yaml.safe_load_all(path.read_text("utf-8")):
            if doc:
                docs.append((path, doc))
    return docs


def _by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for _, d in _manifests() if d["kind"] == kind}


def _env_list_to_dict(env: Any) -> dict[str, str]:
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in (env or {}).items()}


# --- Dockerfile -------------------------------------------------------------------------------


def test_dockerfile_installs_runtime_only_as_non_root() -> None:
    text = DOCKERFILE.read_text("utf-8")
    instructions = [
        line.strip() for line in re.sub(r"\\\n", " ", text).splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    froms = [i for i in instructions if i.upper().startswith("FROM ")]
    assert froms, "no FROM"
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in instructions
    assert all("${PYTHON_IMAGE}" in f or "python:3.11-slim" in f for f in froms)
    installs = [i for i in instructions if re.search(r"\bpip install\b", i)]
    assert any(re.search(r"pip install \.(\s|$|&)", i) for i in installs), installs
    assert not any("[embedded]" in i or "[test]" in i or ".[" in i for i in installs), installs
    users = [i.split(None, 1)[1] for i in instructions if i.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"root", "0"}, users
    assert 'ENTRYPOINT ["parley"]' in instructions
    assert 'CMD ["worker"]' in instructions
    assert "EXPOSE 8080" in instructions
    health = [i for i in instructions if i.upper().startswith("HEALTHCHECK ")]
    assert len(health) == 1 and "/healthz" in health[0] and '"python"' in health[0]
    assert "curl" not in health[0] and "wget" not in health[0]


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    entries = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text("utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", ".parley", ".git", ".pytest_cache", ".hypothesis"} <= entries
    # ...but never what `pip install .` needs
    assert not {"parley", "pyproject.toml", "README.md"} & entries


# --- docker-compose.yml -----------------------------------------------------------------------


def _compose_command() -> list[str] | None:
    exe = shutil.which("docker-compose")
    if exe:
        return [exe]
    docker = shutil.which("docker")
    if docker and subprocess.run(
        [docker, "compose", "version"], capture_output=True, timeout=30, check=False
    ).returncode == 0:
        return [docker, "compose"]
    return None


def test_compose_file_is_valid_for_docker_compose() -> None:
    command = _compose_command()
    if command is None:
        message = (
            "neither `docker-compose` nor `docker compose` is installed "
            "(Debian: apt-get install -y --no-install-recommends docker-compose)"
        )
        pytest.fail(message + "; `make test` installs it")
    # Interpolate with this project's defaults, not whatever the caller has exported.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PARLEY_", "COMPOSE_"))}
    result = subprocess.run(
        [*command, "-f", str(COMPOSE), "config", "-q"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", ["worker", "web"])
def test_compose_parley_services(name: str) -> None:
    services = _compose()["services"]
    svc = services[name]
    # scalable with --scale: no fixed name, no host ports
    assert "container_name" not in svc
    assert "ports" not in svc
    assert svc["build"]["context"] == "."
    assert svc["command"] == [name]
    env = _env_list_to_dict(svc["environment"])
    for key, value in REQUIRED_SERVICE_ENV.items():
        assert env.get(key) == value, key
    for key in PASSED_FROM_HOST:
        assert re.fullmatch(r"\$\{" + key + r":-[^}]*\}", env.get(key, "")), (key, env.get(key))
    assert env["PARLEY_LLM_BASE_URL"] != "${PARLEY_LLM_BASE_URL:-}", "empty base_url breaks the SDK"
    unknown = {k for k in env if k.startswith("PARLEY_")} - SETTINGS_ENV
    assert not unknown, f"not a Parley setting: {sorted(unknown)}"
    assert "/healthz" in " ".join(svc["healthcheck"]["test"])
    for dep in ("kafka", "mongo", "redis"):
        assert svc["depends_on"][dep] == {"condition": "service_healthy"}


def test_compose_infrastructure_has_healthchecks_and_named_volumes() -> None:
    data = _compose()
    services = data["services"]
    expected = {"traefik", "web", "worker", "kafka", "redis", "mongo", "minio", "prometheus",
                "grafana"}
    assert expected <= set(services)
    for name in expected:
        assert "healthcheck" in services[name], name
        for dep, cond in (services[name].get("depends_on") or {}).items():
            assert dep in services and cond == {"condition": "service_healthy"}, (name, dep)
    assert services["kafka"]["image"].startswith("apache/kafka:")
    kafka_env = _env_list_to_dict(services["kafka"]["environment"])
    assert set(kafka_env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert kafka_env["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092"
    assert "redis-cli" in services["redis"]["healthcheck"]["test"]
    assert services["mongo"]["image"] == "mongo:7"
    assert "mongosh" in services["mongo"]["healthcheck"]["test"]
    assert services["traefik"]["image"].startswith("traefik:v3")
    named = set(data["volumes"])
    for name in ("kafka", "mongo", "redis", "minio", "prometheus", "grafana"):
        mounts = [v.split(":")[0] for v in services[name].get("volumes", [])]
        assert any(m in named for m in mounts), name
    # no hard-coded secrets: credentials come from the environment, dev defaults only
    for name, key in (("minio", "MINIO_ROOT_PASSWORD"), ("grafana", "GF_SECURITY_ADMIN_PASSWORD")):
        value = _env_list_to_dict(services[name]["environment"])[key]
        assert value.startswith("${") and ":-" in value, (name, key, value)


def test_traefik_routes_ws_v1_and_root_to_web_with_dashboard_off() -> None:
    services = _compose()["services"]
    labels = services["web"]["labels"]
    assert labels["traefik.enable"] == "true"
    router_rule = re.compile(r"traefik\.http\.routers\.[\w-]+\.rule")
    rules = [v for k, v in labels.items() if router_rule.fullmatch(k)]
    for prefix in ("/ws", "/v1", "/"):
        assert any(f"PathPrefix(`{prefix}`)" in rule for rule in rules), prefix
    routers = {k.split(".")[3] for k in labels if k.startswith("traefik.http.routers.")}
    for router in routers:
        assert labels[f"traefik.http.routers.{router}.service"] == "parley-web"
    assert labels["traefik.http.services.parley-web.loadbalancer.server.port"] == "8080"
    for name, svc in services.items():
        if name != "web":
            assert "traefik.enable" not in (svc.get("labels") or {}), name

    mounted = {v.split(":")[1]: v.split(":")[0] for v in services["traefik"]["volumes"]}
    static = _yaml(ROOT / mounted["/etc/traefik/traefik.yml"])
    assert static["api"]["dashboard"] is False
    assert static["providers"]["docker"]["exposedByDefault"] is False
    assert static["entryPoints"]["web"]["address"] == ":80"


# --- Prometheus and Grafana -------------------------------------------------------------------


def test_prometheus_scrapes_worker_and_web_via_dns() -> None:
    config = _yaml(PROMETHEUS)
    found: dict[str, dict[str, Any]] = {}
    for job in config["scrape_configs"]:
        for sd in job.get("dns_sd_configs", []):
            for name in sd["names"]:
                found[name] = {"job": job, "sd": sd}
    services = _compose()["services"]
    for name in ("worker", "web"):
        assert name in found, f"prometheus does not scrape {name}"
        assert name in services
        sd, job = found[name]["sd"], found[name]["job"]
        assert sd["type"] == "A" and sd["port"] == 8080
        assert job.get("metrics_path", "/metrics") == "/metrics"
    mounts = [v.split(":") for v in services["prometheus"]["volumes"]]
    assert ["./deploy/prometheus/prometheus.yml", "/etc/prometheus/prometheus.yml", "ro"] in mounts


def _panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for panel in panels:
        out.append(panel)
        out.extend(_panels(panel.get("panels", [])))
    return out


def test_grafana_dashboard_charts_every_metric() -> None:
    dashboard = json.loads(DASHBOARD.read_text("utf-8"))
    assert dashboard["uid"] and dashboard["title"] and isinstance(dashboard["schemaVersion"], int)
    panels = _panels(dashboard["panels"])
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    exprs = [t["expr"] for p in panels for t in p.get("targets", []) if t.get("expr")]
    assert exprs
    for metric in METRICS:
        suffix = "_bucket" if metric in HISTOGRAMS else ""
        pattern = re.compile(rf"(?<![A-Za-z0-9_:]){metric}{suffix}(?![A-Za-z0-9_:])")
        assert any(pattern.search(e) for e in exprs), f"no panel queries {metric}{suffix}"
    for metric in HISTOGRAMS:
        quantiles = {
            q for e in exprs if f"{metric}_bucket" in e
            for q in re.findall(r"histogram_quantile\((0\.\d+)", e)
        }
        assert {"0.5", "0.99"} <= quantiles, (metric, quantiles)
    lag = [e for e in exprs if "parley_consumer_lag" in e and "by (topic, partition)" in e]
    assert lag, "consumer lag is not broken down by topic and partition"


def test_grafana_queries_group_by_labels_the_metrics_have() -> None:
    """A `by (label)` that the metric lacks silently merges series (e.g. events in and out)."""
    from prometheus_client.metrics import MetricWrapperBase

    import parley.metrics

    labels: dict[str, set[str]] = {}
    for obj in vars(parley.metrics).values():
        if isinstance(obj, MetricWrapperBase):
            labels[obj._name] = set(obj._labelnames)  # prometheus_client strips _total
    assert set(METRICS) <= {n + "_total" if n + "_total" in METRICS else n for n in labels}
    dashboard = json.loads(DASHBOARD.read_text("utf-8"))
    for panel in _panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            expr = target["expr"]
            names = {re.sub(r"_(bucket|sum|count|total)$", "", m)
                     for m in re.findall(r"\bparley_[a-z_]+", expr)}
            assert len(names) == 1, expr
            (name,) = names
            allowed = labels[name] | {"instance", "job"} | ({"le"} if "_bucket" in expr else set())
            for group in re.findall(r"\bby \(([^)]*)\)", expr):
                used = {g.strip() for g in group.split(",") if g.strip()}
                assert used <= allowed, f"{panel['title']}: {expr} groups by {used - allowed}"
            for legend in re.findall(r"\{\{(\w+)\}\}", target.get("legendFormat", "")):
                assert legend in allowed, f"{panel['title']}: legend {{{{{legend}}}}} not a label"


def test_grafana_provisioning_points_at_prometheus_and_the_dashboards() -> None:
    datasources = _yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    urls = [d["url"] for d in datasources if d["type"] == "prometheus"]
    assert urls == ["http://prometheus:9090"]
    providers = _yaml(GRAFANA / "provisioning" / "dashboards" / "parley.yml")["providers"]
    paths = {p["options"]["path"] for p in providers}
    grafana = _compose()["services"]["grafana"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in grafana["volumes"] if ":" in v}
    assert mounts["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"
    assert any(mounts.get(p) == "./deploy/grafana/dashboards" for p in paths), (paths, mounts)


# --- Kubernetes -------------------------------------------------------------------------------


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("path", _manifest_files(), ids=lambda p: p.name)
def test_k8s_manifest_is_valid(path: Path, version: str) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text("utf-8")) if d]
    assert docs, f"{path.name} is empty"
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{path.name}: {doc['kind']} {where}: {exc.message} (k8s {exc.version})")
        assert doc["metadata"].get("namespace", "parley") == "parley" or doc["kind"] == "Namespace"


def test_kustomization_lists_every_manifest() -> None:
    kustomization = _yaml(K8S / "kustomization.yaml")
    assert kustomization["kind"] == "Kustomization"
    assert sorted(kustomization["resources"]) == sorted(p.name for p in _manifest_files())
    assert kustomization["namespace"] == "parley"
    assert "parley" in _by_kind("Namespace")


def test_k8s_config_holds_only_parley_settings() -> None:
    config = _by_kind("ConfigMap")["parley-config"]["data"]
    secret = _by_kind("Secret")["parley-secrets"]["stringData"]
    assert not (set(config) | set(secret)) - SETTINGS_ENV
    assert "PARLEY_LLM_API_KEY" in secret and "PARLEY_LLM_API_KEY" not in config
    assert all(isinstance(v, str) for v in config.values())
    assert config.get("PARLEY_LLM_BASE_URL", "x"), "empty base_url breaks the SDK"
    # the values parse as Settings (types, ranges, URL schemes)
    Settings.model_validate({k.removeprefix("PARLEY_").lower(): v for k, v in config.items()})


@pytest.mark.parametrize(("name", "command"), [("parley-worker", "worker"), ("parley-web", "web")])
def test_k8s_deployments(name: str, command: str) -> None:
    deployment = _by_kind("Deployment")[name]
    pod = deployment["spec"]["template"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod["metadata"]["labels"].items()
    spec = pod["spec"]
    (container,) = spec["containers"]
    assert [*container.get("command", []), *container.get("args", [])] == ["parley", command]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8080}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        if probe in container:
            assert container[probe]["httpGet"]["port"] in ("http", 8080)
    refs = {
        ("ConfigMap", r["configMapRef"]["name"]) if "configMapRef" in r
        else ("Secret", r["secretRef"]["name"])
        for r in container["envFrom"]
    }
    assert refs == {("ConfigMap", "parley-config"), ("Secret", "parley-secrets")}
    assert {"requests", "limits"} <= set(container["resources"])
    assert spec["securityContext"]["runAsNonRoot"] is True
    # Service links would put PARLEY_WEB_PORT=tcp://... (from the parley-web Service) in the env
    assert spec["enableServiceLinks"] is False
    mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
    if container.get("securityContext", {}).get("readOnlyRootFilesystem"):
        assert "/var/lib/parley" in mounts and "/tmp" in mounts
    if command == "worker":
        assert deployment["spec"]["replicas"] == 2
        assert spec["terminationGracePeriodSeconds"] == 60


@pytest.mark.parametrize(("service", "deployment"), [("parley-web", "parley-web"),
                                                    ("parley-worker", "parley-worker")])
def test_k8s_services_select_their_pods(service: str, deployment: str) -> None:
    svc = _by_kind("Service")[service]
    labels = _by_kind("Deployment")[deployment]["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= labels.items()
    (container,) = _by_kind("Deployment")[deployment]["spec"]["template"]["spec"]["containers"]
    port_names = {p["name"] for p in container["ports"]}
    for port in svc["spec"]["ports"]:
        assert port["targetPort"] in port_names or port["targetPort"] == 8080


# --- the commands the deployment runs exist ---------------------------------------------------


@pytest.mark.parametrize("command", ["worker", "web"])
def test_deployed_commands_exist_in_the_cli(command: str) -> None:
    from parley.cli import build_parser

    args = build_parser().parse_args([command])
    assert args.command == command


def test_every_parley_variable_in_the_compose_file_is_a_real_setting() -> None:
    from parley.settings import Settings

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    known = {f"PARLEY_{name.upper()}" for name in Settings.model_fields}
    names = set(compose["x-parley"]["environment"])
    for service in compose["services"].values():
        names |= {k for k in (service.get("environment") or {}) if isinstance(service.get("environment"), dict)}
    unknown = sorted(n for n in names if n.startswith("PARLEY_") and n not in known)
    assert unknown == [], f"compose sets variables Parley does not read: {unknown}"
