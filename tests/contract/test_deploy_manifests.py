"""The production manifests under deploy/ agree with the schemas and with the code.

No Docker engine or cluster exists on the build machines, so this checks statically: every
YAML file parses, deploy/compose.yaml validates against the Compose Specification JSON Schema
(vendored in deploy/schema/), the Kubernetes manifests have the structure we rely on, and both
run exactly the `tandem` commands, ports and TANDEM_* settings the code defines.
"""

from __future__ import annotations

import base64
import copy
import functools
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import typer
import yaml

from devtools.stack.local import NO_DATABASE, SERVICE_PORTS, WORKER_METRICS_PORT
from services.cli import app as tandem_cli
from services.common.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE_FILE = DEPLOY / "compose.yaml"
COMPOSE_SCHEMA = DEPLOY / "schema" / "compose-spec.json"
BOOTSTRAP_IN_IMAGE = "/opt/tandem/bootstrap.py"
TEMPLATES = {"secret.example.yaml", "bootstrap-job.yaml"}
"""Kubernetes files deliberately left out of kustomization.yaml (see their headers)."""

YAML_FILES = sorted(p for p in DEPLOY.rglob("*") if p.suffix in {".yaml", ".yml"})
TANDEM_CONTAINERS = {*SERVICE_PORTS, "worker", "tracking-consumer", "bootstrap"}


# -- loading ----------------------------------------------------------------------------------
@functools.cache
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return data


@functools.cache
def k8s_docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(K8S.glob("*.yaml")):
        docs.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None)
    return docs


def k8s(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in k8s_docs() if doc["kind"] == kind}


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = doc["spec"]["template"]["spec"]["containers"]
    return found


def config_map() -> dict[str, str]:
    data: dict[str, str] = k8s("ConfigMap")["tandem-config"]["data"]
    return data


def setting_env_names() -> set[str]:
    return {f"TANDEM_{name.upper()}" for name in Settings.model_fields}


@functools.cache
def code_env_names() -> set[str]:
    """TANDEM_* names read straight from os.environ by the code (outside Settings)."""
    sources = [*ROOT.glob("services/**/*.py"), *ROOT.glob("workflows/**/*.py"), DEPLOY / "bootstrap.py"]
    pattern = re.compile(r"""["'](TANDEM_[A-Z0-9_]+)["']""")
    return {name for path in sources for name in pattern.findall(path.read_text())}


def known_env_names() -> set[str]:
    return setting_env_names() | code_env_names()


# -- every file parses ------------------------------------------------------------------------
def test_deploy_holds_the_expected_manifests() -> None:
    names = {p.relative_to(DEPLOY).as_posix() for p in YAML_FILES}
    assert {"compose.yaml", "k8s/kustomization.yaml", "k8s/services.yaml", "k8s/worker.yaml"} <= names


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.relative_to(DEPLOY).as_posix())
def test_every_yaml_file_parses_to_mappings(path: Path) -> None:
    docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    assert docs, f"{path} holds no YAML document"
    assert all(isinstance(doc, dict) for doc in docs), f"{path}: every document must be a mapping"


# -- docker compose ---------------------------------------------------------------------------
def compose_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator: jsonschema.protocols.Validator = validator_class(schema)
    return validator


def test_compose_file_validates_against_the_compose_spec() -> None:
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in compose_validator().iter_errors(compose())]
    assert not errors, "\n".join(errors)


def test_the_compose_schema_rejects_typical_mistakes() -> None:
    validator = compose_validator()
    wrong_condition = copy.deepcopy(compose())
    wrong_condition["services"]["worker"]["depends_on"]["cycles"]["condition"] = "healthy"
    misspelt_key = copy.deepcopy(compose())
    misspelt_key["services"]["cycles"]["helthcheck"] = misspelt_key["services"]["cycles"].pop("healthcheck")
    for broken in (wrong_condition, misspelt_key):
        assert list(validator.iter_errors(broken)), "the schema must reject this file"


def cli_command(*path: str) -> Any:
    command: Any = typer.main.get_command(tandem_cli)
    for name in path:
        command = command.commands[name]
    return command


def cli_options(*path: str) -> set[str]:
    return {opt for param in cli_command(*path).params for opt in (*param.opts, *param.secondary_opts)}


def test_compose_runs_each_service_the_worker_and_the_consumer_with_real_commands() -> None:
    services = compose()["services"]
    assert {"--host", "--port"} <= cli_options("serve")
    for name, port in SERVICE_PORTS.items():
        spec = services[name]
        assert spec["command"] == ["serve", name, "--host", "0.0.0.0", "--port", str(port)]
        assert spec["ports"] == [f"{port}:{port}"]
        assert f"127.0.0.1:{port}/healthz" in " ".join(spec["healthcheck"]["test"])
    assert {"--host", "--metrics-port"} <= cli_options("worker")
    assert services["worker"]["command"] == ["worker", "--host", "0.0.0.0", "--metrics-port", str(WORKER_METRICS_PORT)]
    assert f"127.0.0.1:{WORKER_METRICS_PORT}/healthz" in " ".join(services["worker"]["healthcheck"]["test"])
    assert "--no-migrate" in cli_options("tracking", "consume")
    assert services["tracking-consumer"]["command"] == ["tracking", "consume", "--no-migrate"]
    # The consumer runs on its own: the tracking API container must not consume as well.
    assert services["tracking"]["environment"]["TANDEM_TRACKING_CONSUMER"] == "0"
    assert services["bootstrap"]["entrypoint"] == ["python", BOOTSTRAP_IN_IMAGE]


def test_compose_builds_every_tandem_container_from_the_one_dockerfile() -> None:
    services = compose()["services"]
    images = {services[name]["image"] for name in TANDEM_CONTAINERS}
    builds = {json.dumps(services[name]["build"], sort_keys=True) for name in TANDEM_CONTAINERS}
    assert len(images) == 1 and len(builds) == 1, (images, builds)
    build = services["worker"]["build"]
    context = (DEPLOY / build["context"]).resolve()
    assert context == ROOT and (context / build["dockerfile"]) == DEPLOY / "Dockerfile"
    others = {name for name, spec in services.items() if name not in TANDEM_CONTAINERS}
    assert all("build" not in services[name] for name in others)


def test_compose_wires_kafka_temporal_and_postgres_for_production() -> None:
    services = compose()["services"]
    env = services["cycles"]["environment"]
    assert env["TANDEM_ENV"] == "prod"
    assert env["TANDEM_DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert env["TANDEM_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert env["TANDEM_TEMPORAL_ADDRESS"] == "temporal:7233"
    for name, port in SERVICE_PORTS.items():
        assert env[f"TANDEM_{name.upper()}_URL"] == f"http://{name}:{port}"
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    kenv = kafka["environment"]
    assert set(kenv["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "PLAINTEXT://kafka:9092" in kenv["KAFKA_ADVERTISED_LISTENERS"]
    factors = {key: value for key, value in kenv.items() if key.endswith("REPLICATION_FACTOR")}
    assert factors and set(factors.values()) == {1}, factors
    cluster_id = re.fullmatch(r"\$\{KAFKA_CLUSTER_ID:-([A-Za-z0-9_-]{22})\}", kenv["CLUSTER_ID"])
    assert cluster_id is not None and len(base64.urlsafe_b64decode(cluster_id.group(1) + "==")) == 16
    temporal = services["temporal"]
    assert temporal["image"].startswith("temporalio/auto-setup:")
    # postgres12: SQL advanced visibility, needed for Tandem's custom search attributes.
    assert temporal["environment"]["DB"] == "postgres12"
    assert temporal["environment"]["POSTGRES_SEEDS"] == "temporal-postgres"
    assert services["temporal-ui"]["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert (DEPLOY / "temporal" / "dynamicconfig" / "tandem.yaml").is_file()


def test_compose_secrets_have_no_default() -> None:
    services = compose()["services"]
    for name in TANDEM_CONTAINERS:
        env = services[name]["environment"]
        assert env["TANDEM_JWT_SECRET"].startswith("${TANDEM_JWT_SECRET:?"), name
        assert "${TANDEM_DB_PASSWORD:?" in env["TANDEM_DATABASE_URL"], name
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${TANDEM_DB_PASSWORD:?")
    assert services["temporal"]["environment"]["POSTGRES_PWD"].startswith("${TEMPORAL_DB_PASSWORD:?")
    assert services["temporal-postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${TEMPORAL_DB_PASSWORD:?")
    # An empty value is not "unset" for pydantic-settings: optional settings are left out instead.
    for name in TANDEM_CONTAINERS:
        for key, value in services[name]["environment"].items():
            assert value not in ("", None) and ":-}" not in str(value), f"{name}: {key} defaults to empty"


def test_compose_sets_only_tandem_settings_the_code_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    services = compose()["services"]
    for name in TANDEM_CONTAINERS:
        unknown = {key for key in services[name]["environment"] if key not in known_env_names()}
        assert not unknown, f"{name} sets TANDEM_* variables no code reads: {sorted(unknown)}"
    # The environment of a service container, interpolated, is a valid production Settings.
    for key, value in services["goals"]["environment"].items():
        monkeypatch.setenv(key, re.sub(r"\$\{[A-Z_]+:\?[^}]*\}", "s" * 40, str(value)))
    settings = Settings()
    assert settings.env == "prod" and not settings.auto_migrate
    assert settings.database_url_for("goals") == f"postgresql+asyncpg://tandem:{'s' * 40}@postgres:5432/tandem"


def test_compose_dependencies_wait_for_health_or_completion() -> None:
    services = compose()["services"]
    for name, spec in services.items():
        for target, dep in spec.get("depends_on", {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            if dep["condition"] == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits for {target}, which has no healthcheck"
            if dep["condition"] == "service_completed_successfully":
                assert services[target].get("restart") == "no", f"{target} must be a one-shot"
    for name in TANDEM_CONTAINERS - {"bootstrap"}:
        conditions = {t: d["condition"] for t, d in services[name]["depends_on"].items()}
        assert conditions["bootstrap"] == "service_completed_successfully", name
        assert conditions["postgres"] == conditions["kafka"] == conditions["temporal"] == "service_healthy", name


# -- Dockerfile -------------------------------------------------------------------------------
def test_dockerfile_builds_one_non_root_image_with_the_tandem_entrypoint() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    instructions = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert instructions[0] == "FROM python:3.11-slim"
    assert sum(line.startswith("FROM ") for line in instructions) == 1
    assert any(re.match(r"RUN pip install \.( |$)", line) for line in instructions)
    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    assert 'ENTRYPOINT ["tandem"]' in instructions
    assert f"COPY deploy/bootstrap.py {BOOTSTRAP_IN_IMAGE}" in instructions
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["tandem"] == "services.cli:main"
    allowed = {
        line[1:].rstrip("/")
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    copied = {part for line in instructions if line.startswith("COPY ") for part in line.split()[1:-1]}
    assert copied <= allowed, f"COPY sources the .dockerignore leaves out: {sorted(copied - allowed)}"


# -- Kubernetes -------------------------------------------------------------------------------
def test_k8s_documents_have_api_version_kind_and_name() -> None:
    for doc in k8s_docs():
        assert doc.get("apiVersion") and doc.get("kind"), doc
        if doc["kind"] == "Kustomization":
            continue
        assert doc.get("metadata", {}).get("name"), doc
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "tandem", doc["metadata"]


def test_every_deployment_has_health_probes_and_resource_limits() -> None:
    deployments = k8s("Deployment")
    assert deployments
    for name, doc in deployments.items():
        selector = doc["spec"]["selector"]["matchLabels"]
        assert selector.items() <= doc["spec"]["template"]["metadata"]["labels"].items(), name
        for container in containers(doc):
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            for probe in ("readinessProbe", "livenessProbe"):
                check = container[probe]["httpGet"]
                assert check["path"] == "/healthz" and check["port"] in ports, (name, probe)
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= container["resources"][kind].keys(), (name, kind)
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
        assert doc["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True, name


def test_every_service_has_a_deployment_and_a_service_on_its_port() -> None:
    deployments, services = k8s("Deployment"), k8s("Service")
    assert {"--host", "--port"} <= cli_options("serve")
    for name, port in SERVICE_PORTS.items():
        (container,) = containers(deployments[name])
        assert container["args"] == ["serve", name, "--host", "0.0.0.0", "--port", str(port)]
        assert container["ports"] == [{"name": "http", "containerPort": port}]
        (service_port,) = services[name]["spec"]["ports"]
        assert service_port["port"] == port and service_port["targetPort"] == "http"
        assert services[name]["spec"]["selector"] == deployments[name]["spec"]["selector"]["matchLabels"]
        assert config_map()[f"TANDEM_{name.upper()}_URL"] == f"http://{name}:{port}"
    (worker,) = containers(deployments["worker"])
    assert worker["args"] == ["worker", "--host", "0.0.0.0", "--metrics-port", str(WORKER_METRICS_PORT)]
    assert worker["ports"] == [{"name": "metrics", "containerPort": WORKER_METRICS_PORT}]
    # The Service of the tracking API must not select the consumer or staleness pods.
    selected = services["tracking"]["spec"]["selector"].items()
    tracking_pods = {
        n for n, d in deployments.items() if selected <= d["spec"]["template"]["metadata"]["labels"].items()
    }
    assert tracking_pods == {"tracking"}


def test_one_image_everywhere() -> None:
    images = {c["image"] for kind in ("Deployment", "Job") for doc in k8s(kind).values() for c in containers(doc)}
    assert len(images) == 1, images
    (image,) = images
    kustomization = k8s_kustomization()
    assert [entry["name"] for entry in kustomization["images"]] == [image.rsplit(":", 1)[0]]
    (job,) = k8s("Job").values()
    assert containers(job)[0]["command"] == ["python", BOOTSTRAP_IN_IMAGE]


def k8s_kustomization() -> dict[str, Any]:
    (doc,) = (d for d in k8s_docs() if d["kind"] == "Kustomization")
    return doc


def test_kustomization_applies_every_manifest_but_the_templates() -> None:
    listed = set(k8s_kustomization()["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk - TEMPLATES


def test_config_map_holds_only_known_non_secret_settings() -> None:
    data = config_map()
    assert not set(data) - known_env_names(), sorted(set(data) - known_env_names())
    assert data["TANDEM_ENV"] == "prod" and data["TANDEM_AUTO_MIGRATE"] == "false"
    assert not {"TANDEM_JWT_SECRET", "TANDEM_DATABASE_URL", "TANDEM_SERVICE_TOKEN"} & set(data)
    secret = k8s("Secret")["tandem-secrets"]["stringData"]
    assert set(secret) == {"TANDEM_DATABASE_URL", "TANDEM_JWT_SECRET"}
    for doc in k8s("Deployment").values():
        for container in containers(doc):
            refs = [next(iter(ref.values()))["name"] for ref in container["envFrom"]]
            assert refs == ["tandem-config", "tandem-secrets"]
            overrides = {item["name"] for item in container.get("env", [])}
            assert overrides <= known_env_names(), overrides


def test_secret_template_placeholders_are_refused_by_the_services() -> None:
    secret = k8s("Secret")["tandem-secrets"]["stringData"]
    with pytest.raises(ValueError, match="TANDEM_JWT_SECRET"):
        Settings(env="prod", jwt_secret=secret["TANDEM_JWT_SECRET"], jwks_url=None)


def test_autoscalers_target_the_http_services_and_consumers_stay_within_partitions() -> None:
    deployments, hpas = k8s("Deployment"), k8s("HorizontalPodAutoscaler")
    assert all(doc["apiVersion"] == "autoscaling/v2" for doc in hpas.values())
    targets = {doc["spec"]["scaleTargetRef"]["name"]: doc for doc in hpas.values()}
    assert set(SERVICE_PORTS) <= set(targets) <= set(deployments)
    for name in targets:
        assert "replicas" not in deployments[name]["spec"], f"{name}: leave replicas to its autoscaler"
    partitions = int(config_map()["TANDEM_BOOTSTRAP_METRICS_PARTITIONS"])
    consumer = targets["tracking-consumer"]["spec"]
    assert consumer["minReplicas"] <= consumer["maxReplicas"] <= partitions
    env = {e["name"]: e["value"] for e in containers(deployments["tracking-consumer"])[0]["env"]}
    assert env["TANDEM_TRACKING_CONSUMER"] == "1"
    # Exactly one pod evaluates staleness; every other tracking pod has it off.
    evaluators = [
        name
        for name, doc in deployments.items()
        for c in containers(doc)
        if {"name": "TANDEM_TRACKING_STALENESS_INTERVAL", "value": "0"} not in c.get("env", [])
        and c["args"][:2] == ["serve", "tracking"]
    ]
    assert evaluators == ["tracking-staleness"]
    assert deployments["tracking-staleness"]["spec"]["replicas"] == 1
    assert deployments["tracking-staleness"]["spec"]["strategy"]["type"] == "Recreate"


def test_the_console_holds_no_database_and_starts_after_the_cycles_api() -> None:
    assert NO_DATABASE == {"console"} <= set(SERVICE_PORTS)
    assert not (ROOT / "services" / "console" / "migrations").exists()
    console = compose()["services"]["console"]
    assert console["depends_on"]["cycles"]["condition"] == "service_healthy"
    (container,) = containers(k8s("Deployment")["console"])
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
