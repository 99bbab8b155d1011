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


_DEFAULT = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def _interpolate(value: str) -> str:
    """Compose's `${VAR:-default}` with the defaults (what `up` sees with nothing exported)."""
    return _DEFAULT.sub(lambda m: m.group(2) or "", value)


def _traefik_flags() -> dict[str, str]:
    flags = {}
    for arg in _compose()["services"]["traefik"]["command"]:
        name, _, value = _interpolate(arg).removeprefix("--").partition("=")
        flags[name.lower()] = value
    return flags


def _routers() -> dict[str, dict[str, str]]:
    """Every Traefik router declared in a label: name -> {rule, entrypoints, tls, ...}."""
    routers: dict[str, dict[str, str]] = {}
    for svc in _compose()["services"].values():
        for key, value in (svc.get("labels") or {}).items():
            m = re.fullmatch(r"traefik\.http\.routers\.([\w-]+)\.(.+)", key)
            if m:
                routers.setdefault(m.group(1), {})[m.group(2)] = _interpolate(str(value))
    return routers


def _rule_matches(rule: str, host: str, path: str) -> bool:
    """Evaluate the subset of Traefik's rule language the compose file uses."""
    allowed = re.sub(r"`[^`]*`", "", rule)
    leftover = re.sub(r"\b(Host|Path|PathPrefix)\(\)|&&|\|\||!|[()\s]", "", allowed)
    assert not leftover, f"rule uses more than Host/Path/PathPrefix/&&/||/!: {rule}"
    expr = re.sub(r"`([^`]*)`", lambda m: repr(m.group(1)), rule)
    expr = expr.replace("&&", " and ").replace("||", " or ").replace("!", " not ")
    env = {
        "Host": lambda h: h.lower() == host.lower(),
        "Path": lambda p: p == path,
        "PathPrefix": lambda p: path.startswith(p),
    }
    return bool(eval(expr, {"__builtins__": {}}, env))  # noqa: S307 - our own file, vetted above


PUBLIC_HOST = "localhost"  # PARLEY_PUBLIC_HOST's default
PUBLIC_PATHS = ["/", "/ws", "/widget.js", "/widget/panel", "/v1/widget/demo", "/favicon.ico", "/v1/webhooks/telegram/demo", "/v1/webhooks/whatsapp/demo",
                "/v1/applications/demo/uploads", "/v1/files/demo/abc.png", "/v1/openapi.json"]
INTERNAL_PATHS = ["/v1/admin/applications", "/v1/admin/chatbots/x", "/v1/tables", "/console", "/console/",
                  "/console/assets/app.js", "/v1/auth/login",
                  "/v1/tables/conversations/demo/c1", "/metrics", "/healthz", "/readyz"]


def _entrypoints(router: dict[str, str]) -> set[str]:
    return {e.strip() for e in router["entrypoints"].split(",")}


def test_traefik_public_entry_point_is_tls_and_plain_http_only_redirects() -> None:
    flags = _traefik_flags()
    assert flags["entrypoints.web.address"] == ":80"
    assert flags["entrypoints.websecure.address"] == ":443"
    assert flags["entrypoints.websecure.http.tls"] == "true"
    # http -> https, permanently, to the published HTTPS port
    assert flags["entrypoints.web.http.redirections.entrypoint.to"] == ":443"
    assert flags["entrypoints.web.http.redirections.entrypoint.scheme"] == "https"
    assert flags["entrypoints.web.http.redirections.entrypoint.permanent"] == "true"
    # a certificate resolver for real hosts, its email from the environment
    resolver = "certificatesresolvers.letsencrypt.acme"
    assert flags[f"{resolver}.tlschallenge"] == "true"
    assert flags[f"{resolver}.storage"].startswith("/letsencrypt/")
    raw = " ".join(_compose()["services"]["traefik"]["command"])
    assert "acme.email=${ACME_EMAIL:-}" in raw
    mounts = [v.split(":") for v in _compose()["services"]["traefik"]["volumes"]]
    assert any(m[1] == "/letsencrypt" and m[0] in _compose()["volumes"] for m in mounts)
    # no router answers on plain HTTP (so the redirect is all it does); every public one is TLS
    routers = _routers()
    assert routers
    for name, router in routers.items():
        assert "web" not in _entrypoints(router), f"{name} serves plain HTTP"
        if "websecure" in _entrypoints(router):
            assert router["tls"] == "true", name
            assert router["tls.certresolver"] == "letsencrypt", name
            assert f"Host(`{PUBLIC_HOST}`)" in router["rule"], f"{name}: no PARLEY_PUBLIC_HOST"
    # the self-signed default for local use is Traefik's own: no default certificate is set
    dynamic = _yaml(DEPLOY / "traefik" / "dynamic.yml")
    assert "stores" not in dynamic.get("tls", {})
    assert dynamic["tls"]["options"]["default"]["minVersion"] in ("VersionTLS12", "VersionTLS13")


def test_traefik_public_entry_point_routes_no_admin_tables_or_metrics() -> None:
    routers = _routers()
    public = {n: r for n, r in routers.items() if _entrypoints(r) & {"web", "websecure"}}
    assert public
    for path in PUBLIC_PATHS:
        assert any(_rule_matches(r["rule"], PUBLIC_HOST, path) for r in public.values()), path
        assert all(routers[n]["service"] == "parley-web" for n in public), path
    for path in INTERNAL_PATHS:
        for host in (PUBLIC_HOST, "evil.example"):
            hits = [n for n, r in public.items() if _rule_matches(r["rule"], host, path)]
            assert not hits, f"{path} is routed publicly by {hits}"
    # some rule that does not pin the public host would serve every Host header
    for name, router in public.items():
        assert not _rule_matches(router["rule"], "evil.example", "/"), name


def test_admin_and_tables_are_on_the_internal_entry_point_only() -> None:
    flags = _traefik_flags()
    internal_port = flags["entrypoints.internal.address"].lstrip(":")
    published = _compose()["services"]["traefik"]["ports"]
    mapping = [_interpolate(p) for p in published if _interpolate(p).endswith(f":{internal_port}")]
    assert mapping and all(p.startswith("127.0.0.1:") for p in mapping), published
    for entry_point in ("traefik",):  # ping and Traefik's own metrics: not published at all
        port = flags[f"entrypoints.{entry_point}.address"].lstrip(":")
        assert not any(_interpolate(p).endswith(f":{port}") for p in published)
    routers = _routers()
    internal = {n: r for n, r in routers.items() if _entrypoints(r) == {"internal"}}
    dynamic = _yaml(DEPLOY / "traefik" / "dynamic.yml")
    allow = dynamic["http"]["middlewares"]["parley-internal-only"]["ipAllowList"]["sourceRange"]
    assert "0.0.0.0/0" not in allow and "::/0" not in allow
    for path, service in (("/v1/admin/applications", "parley-web"),
                          ("/console/", "parley-web"), ("/console/assets/app.js", "parley-web"),
                          ("/v1/auth/login", "parley-web"), ("/ws", "parley-web"),
                          ("/v1/tables/conversations/a/b", "parley-worker")):
        hits = [n for n, r in internal.items() if _rule_matches(r["rule"], "anything", path)]
        assert hits, path
        for name in hits:
            assert internal[name]["service"] == service, (path, name)
            assert "parley-internal-only@file" in internal[name]["middlewares"], name
    # /metrics is scraped over the compose network, never through Traefik
    for path in ("/metrics", "/healthz", "/readyz"):
        assert not any(_rule_matches(r["rule"], "x", path) for r in routers.values()), path
    services = _compose()["services"]
    assert services["web"]["labels"]["traefik.http.services.parley-web.loadbalancer.server.port"] == "8080"
    for name, svc in services.items():
        if name not in ("web", "worker"):
            assert "traefik.enable" not in (svc.get("labels") or {}), name
    assert flags["api.dashboard"] == "false"
    assert flags["providers.docker.exposedbydefault"] == "false"
    assert flags["providers.file.filename"] == "/etc/traefik/dynamic.yml"
    mounts = {v.split(":")[1]: v.split(":")[0] for v in services["traefik"]["volumes"]}
    assert mounts["/etc/traefik/dynamic.yml"] == "./deploy/traefik/dynamic.yml"


def test_traefik_access_log_keeps_query_strings_out() -> None:
    flags = _traefik_flags()
    if flags.get("accesslog") == "true":
        assert flags["accesslog.format"] == "json"
        assert flags["accesslog.fields.names.requestpath"] == "drop"
        assert flags["accesslog.fields.names.requestline"] == "drop"


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


def _ingress_matches(paths: list[dict[str, Any]], path: str) -> bool:
    for rule in paths:
        want = rule["path"]
        if rule["pathType"] == "Exact" and path == want:
            return True
        if rule["pathType"] == "Prefix":
            prefix = [e for e in want.split("/") if e]
            if [e for e in path.split("/") if e][: len(prefix)] == prefix:
                return True
        assert rule["pathType"] in ("Exact", "Prefix"), rule
    return False


def test_k8s_ingress_is_tls_and_exposes_only_the_public_paths() -> None:
    (ingress,) = _by_kind("Ingress").values()
    spec = ingress["spec"]
    tls_hosts = {h for t in spec["tls"] for h in t["hosts"]}
    assert all(t["secretName"] for t in spec["tls"])
    assert "defaultBackend" not in spec
    for rule in spec["rules"]:
        assert rule["host"] in tls_hosts, f"{rule['host']} is served without TLS"
        paths = rule["http"]["paths"]
        for path in paths:
            assert path["backend"]["service"]["name"] == "parley-web", path
        for path in PUBLIC_PATHS:
            assert _ingress_matches(paths, path), path
        for path in INTERNAL_PATHS:
            assert not _ingress_matches(paths, path), f"{path} is exposed by the Ingress"
    annotations = ingress["metadata"].get("annotations", {})
    assert annotations.get("nginx.ingress.kubernetes.io/force-ssl-redirect") == "true"
    # the Services stay in-cluster: nothing else publishes admin, tables or /metrics
    for name, svc in _by_kind("Service").items():
        assert svc["spec"].get("type", "ClusterIP") == "ClusterIP", name


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


def test_every_parley_pod_is_behind_a_network_policy_that_admits_only_http() -> None:
    policies = [p for p in yaml.safe_load_all((K8S / "networkpolicy.yaml").read_text("utf-8")) if p]
    for deployment in _by_kind("Deployment").values():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        selecting = [
            p for p in policies
            if p["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
        ]
        assert selecting, f"no NetworkPolicy selects the pods of {deployment['metadata']['name']}"
        for policy in selecting:
            assert policy["spec"]["policyTypes"] == ["Ingress"]
            for rule in policy["spec"]["ingress"]:
                assert rule["ports"] == [{"port": "http", "protocol": "TCP"}], policy["metadata"]["name"]
                assert all(peer != {} for peer in rule["from"]), "an empty peer admits everyone"
