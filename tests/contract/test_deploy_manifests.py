"""The production manifests under deploy/ agree with the schemas and with the code.

No Docker engine or cluster exists on the build machines, so this checks statically: every
YAML file parses, deploy/compose.yaml validates against the Compose Specification JSON Schema
(vendored in deploy/schema/), the Kubernetes manifests have the structure we rely on, and both
run exactly the `tandem` commands, ports and TANDEM_* settings the code defines.

They are also secure by default (issue 14, item 8; docs/security.md): Kafka only over SASL_SSL
with one SCRAM user per kind of container and its ACLs, the consumer's department check on,
Temporal and its UI never published on all interfaces, and no secret in any pod that could mint
tokens: each service that calls another holds its own signing key and nobody else's.
tests/integration/test_trust_deploy_kafka.py runs the compose broker's settings for real.
"""

from __future__ import annotations

import base64
import copy
import functools
import importlib.util
import json
import os
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import typer
import yaml

from devtools.stack.local import NO_DATABASE, SERVICE_PORTS, WORKER_METRICS_PORT
from services.cli import app as tandem_cli
from services.common.auth import IDENTITY_PROVIDER, SERVICE_KEY_POLICIES
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
LONG_RUNNING = {*SERVICE_PORTS, "worker", "tracking-consumer"}
ONE_SHOTS = {"keys", "kafka-setup", "bootstrap"}
TANDEM_CONTAINERS = {*LONG_RUNNING, *ONE_SHOTS, "token"}
KAFKA_CLIENTS = (set(SERVICE_PORTS) - NO_DATABASE) | {"tracking-consumer"}
"""The containers that talk to Kafka: every service's outbox relay, and the tracking consumer."""
MINTERS = set(SERVICE_KEY_POLICIES)
"""The processes that sign service tokens, each with its own key (the console signs none in production)."""


# -- loading ----------------------------------------------------------------------------------
@functools.cache
def bootstrap_module() -> Any:
    """deploy/bootstrap.py, a script rather than a package module, imported by path."""
    spec = importlib.util.spec_from_file_location("tandem_deploy_bootstrap", DEPLOY / "bootstrap.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


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
    for name in ONE_SHOTS:
        assert services[name]["entrypoint"] == ["python", BOOTSTRAP_IN_IMAGE], name


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
    assert "SASL_SSL://kafka:9092" in kenv["KAFKA_ADVERTISED_LISTENERS"]
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
    for name in LONG_RUNNING | {"kafka-setup", "bootstrap"}:
        env = services[name]["environment"]
        assert "${TANDEM_DB_PASSWORD:?" in env["TANDEM_DATABASE_URL"], name
        for key, value in env.items():
            if key.endswith("_PASSWORD"):
                assert re.fullmatch(r"\$\{KAFKA_[A-Z]+_PASSWORD:\?[^}]+\}", value), (name, key, value)
    # The one HS256 secret left keys the console's CSRF tokens; no other container holds it.
    holders = {name for name in TANDEM_CONTAINERS if "TANDEM_JWT_SECRET" in services[name].get("environment", {})}
    assert holders == {"console"}
    assert services["console"]["environment"]["TANDEM_JWT_SECRET"].startswith("${TANDEM_JWT_SECRET:?")
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${TANDEM_DB_PASSWORD:?")
    assert services["temporal"]["environment"]["POSTGRES_PWD"].startswith("${TEMPORAL_DB_PASSWORD:?")
    assert services["temporal-postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${TEMPORAL_DB_PASSWORD:?")
    # An empty value is not "unset" for pydantic-settings: optional settings are left out instead.
    for name in TANDEM_CONTAINERS:
        for key, value in services[name].get("environment", {}).items():
            assert value not in ("", None) and ":-}" not in str(value), f"{name}: {key} defaults to empty"
    # Every ${VAR:?} of compose.yaml is documented in env.example.
    required = set(re.findall(r"\$\{([A-Z_]+):\?", json.dumps(compose())))
    documented = set(re.findall(r"^([A-Z_]+)=", (DEPLOY / "env.example").read_text(), re.M))
    assert required <= documented, sorted(required - documented)


def container_settings(name: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The Settings a compose container starts with (its environment, secrets interpolated)."""
    for key in [k for k in os.environ if k.startswith("TANDEM_")]:
        monkeypatch.delenv(key)
    for key, value in compose()["services"][name].get("environment", {}).items():
        monkeypatch.setenv(key, re.sub(r"\$\{[A-Z_]+:[?-][^}]*\}", "s" * 40, str(value)))
    return Settings()


def test_compose_sets_only_tandem_settings_the_code_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    services = compose()["services"]
    for name in TANDEM_CONTAINERS:
        tandem = {key for key in services[name].get("environment", {}) if key.startswith("TANDEM_")}
        unknown = tandem - known_env_names()
        assert not unknown, f"{name} sets TANDEM_* variables no code reads: {sorted(unknown)}"
    # The environment of every Tandem container, interpolated, is a valid production Settings.
    for name in TANDEM_CONTAINERS - {"keys"}:
        settings = container_settings(name, monkeypatch)
        assert settings.env == "prod", name
    settings = container_settings("goals", monkeypatch)
    assert not settings.auto_migrate
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
    for name in LONG_RUNNING:
        conditions = {t: d["condition"] for t, d in services[name]["depends_on"].items()}
        assert conditions["bootstrap"] == "service_completed_successfully", name
        assert conditions["postgres"] == conditions["kafka"] == conditions["temporal"] == "service_healthy", name
    # The one-shots in order: key material, then the broker, its users and ACLs, then the rest.
    assert services["kafka"]["depends_on"]["keys"]["condition"] == "service_completed_successfully"
    assert services["kafka-setup"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert services["bootstrap"]["depends_on"]["kafka-setup"]["condition"] == "service_completed_successfully"


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
    kafka = k8s("ConfigMap")["tandem-kafka"]["data"]
    for data in (config_map(), kafka):
        assert not set(data) - known_env_names(), sorted(set(data) - known_env_names())
        assert not {"TANDEM_JWT_SECRET", "TANDEM_DATABASE_URL", "TANDEM_SERVICE_TOKEN"} & set(data)
        assert not {key for key in data if key.endswith(("_PASSWORD", "_API_KEY"))}
    assert config_map()["TANDEM_ENV"] == "prod" and config_map()["TANDEM_AUTO_MIGRATE"] == "false"
    assert set(k8s("Secret")["tandem-secrets"]["stringData"]) == {"TANDEM_DATABASE_URL"}
    for doc in [*k8s("Deployment").values(), *k8s("Job").values()]:
        for container in containers(doc):
            refs = [next(iter(ref.values()))["name"] for ref in container["envFrom"]]
            assert refs[:2] == ["tandem-config", "tandem-secrets"] and refs[2:] in ([], ["tandem-kafka"])
            overrides = {item["name"] for item in container.get("env", [])}
            assert overrides <= known_env_names(), overrides


def pod_env(doc: dict[str, Any]) -> dict[str, Any]:
    """A pod's TANDEM_* environment: its ConfigMaps, then its own entries (value or valueFrom)."""
    (container,) = containers(doc)
    maps = k8s("ConfigMap")
    env: dict[str, Any] = {}
    for ref in container["envFrom"]:
        if "configMapRef" in ref:
            env.update(maps[ref["configMapRef"]["name"]]["data"])
    for item in container.get("env", []):
        env[item["name"]] = item.get("value", item.get("valueFrom"))
    return env


def mounts(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """mountPath -> the volume mounted there."""
    (container,) = containers(doc)
    volumes = {v["name"]: v for v in doc["spec"]["template"]["spec"]["volumes"]}
    return {m["mountPath"]: volumes[m["name"]] for m in container.get("volumeMounts", [])}


def test_secret_template_placeholders_are_refused_by_the_services(tmp_path: Path) -> None:
    from services.common.auth import load_service_keys, signing_key_id

    console = k8s("Secret")["tandem-console"]["stringData"]
    with pytest.raises(ValueError, match="TANDEM_JWT_SECRET"):
        Settings(env="prod", jwt_secret=console["TANDEM_JWT_SECRET"], jwks_url="https://issuer.example/jwks")
    pem = tmp_path / "signing.pem"
    pem.write_text(k8s("Secret")["tandem-signing-worker"]["stringData"]["signing.pem"])
    with pytest.raises(ValueError, match="not an unencrypted PEM private key"):
        signing_key_id(Settings(env="prod", service_signing_key=pem))
    trust = tmp_path / "service-keys.json"
    trust.write_text(k8s("ConfigMap")["tandem-service-keys"]["data"]["service-keys.json"])
    with pytest.raises(ValueError, match="is not JSON"):
        load_service_keys(trust)


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
    env = pod_env(deployments["tracking-consumer"])
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


# -- secure by default (issue 14, item 8) -------------------------------------------------------------
def kafka_properties() -> dict[str, str]:
    """The compose broker's server.properties, as the apache/kafka image derives them from KAFKA_*."""
    props: dict[str, str] = {}
    for key, value in compose()["services"]["kafka"]["environment"].items():
        if key in {"KAFKA_OPTS", "KAFKA_HEAP_OPTS"} or not key.startswith("KAFKA_"):
            continue
        # The image's rule (docker/resources ub ConvertKey): _ -> ., __ -> _, ___ -> -, lower case.
        name = re.sub(r"[^_]_[^_]", lambda m: m.group(0).replace("_", "."), key[len("KAFKA_") :])
        props[name.replace("___", "-").replace("__", "_").lower()] = str(value)
    return props


def listeners(value: str) -> dict[str, str]:
    """``NAME://host:port,...`` -> {NAME: host:port}."""
    return dict(item.split("://", 1) for item in value.split(","))


def test_the_compose_broker_speaks_only_sasl_ssl_beyond_its_own_loopback() -> None:
    props = kafka_properties()
    protocols = dict(item.split(":") for item in props["listener.security.protocol.map"].split(","))
    for name, address in listeners(props["listeners"]).items():
        if protocols[name] != "SASL_SSL":
            # PLAINTEXT (the controller, the admin listener) only on the container's loopback.
            assert address.startswith("127.0.0.1:"), (name, address)
    advertised = listeners(props["advertised.listeners"])
    reachable = {name for name, address in advertised.items() if not address.startswith("127.0.0.1:")}
    assert reachable == {"SASL_SSL"} and advertised["SASL_SSL"] == "kafka:9092"
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert "ScramLoginModule required" in props["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"]
    assert props["authorizer.class.name"].endswith("StandardAuthorizer")
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["super.users"] == "User:ANONYMOUS"  # the loopback listeners' principal, nobody else
    assert "ports" not in compose()["services"]["kafka"]
    assert "kafka-tls:/etc/kafka/secrets:ro" in compose()["services"]["kafka"]["volumes"]


def test_every_compose_kafka_client_logs_in_with_its_own_principal_over_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    services = compose()["services"]
    principals = {p.user: p for p in bootstrap_module().KAFKA_PRINCIPALS}
    expected_user = {name: "tandem-services" for name in KAFKA_CLIENTS}
    expected_user |= {"tracking": "tandem-ingest", "tracking-consumer": "tandem-tracking"}
    for name in TANDEM_CONTAINERS - {"kafka-setup"}:
        settings = container_settings(name, monkeypatch) if name != "keys" else None
        if name in KAFKA_CLIENTS:
            assert settings is not None
            assert settings.kafka_bootstrap_servers == "kafka:9092", name
            assert settings.kafka_security_protocol == "SASL_SSL", name
            assert settings.kafka_sasl_mechanism == "SCRAM-SHA-512", name
            assert settings.kafka_sasl_username == expected_user[name] in principals, name
            assert str(settings.kafka_ssl_cafile) == "/var/lib/tandem/kafka-ca/ca.crt", name
            assert "kafka-ca:/var/lib/tandem/kafka-ca:ro" in services[name]["volumes"], name
        else:
            # The worker, the console and the tools talk to no Kafka and hold no Kafka credentials.
            env = services[name].get("environment", {})
            assert not {key for key in env if key.startswith("TANDEM_KAFKA_")}, name
    # kafka-setup creates exactly the users the containers log in as, over the broker's loopback.
    setup = services["kafka-setup"]
    assert setup["network_mode"] == "service:kafka"
    assert setup["environment"]["TANDEM_KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:9094"
    created = setup["command"][setup["command"].index("--kafka-principals") + 1].split(",")
    assert sorted(created) == sorted(set(expected_user.values()))
    for user in created:
        assert principals[user].password_env in setup["environment"], user


def test_the_consumer_side_department_check_is_on_in_compose_and_kubernetes(monkeypatch: pytest.MonkeyPatch) -> None:
    assert container_settings("tracking-consumer", monkeypatch).kafka_enforce_principal is True
    for name in ("tracking-consumer", "tracking", "tracking-staleness"):
        env = pod_env(k8s("Deployment")[name])
        assert env["TANDEM_KAFKA_ENFORCE_PRINCIPAL"] == "true", name
    # And the default in production, for a deployment that leaves the setting out.
    assert Settings(env="prod", jwks_url="https://issuer.example/jwks").kafka_enforce_principal is True


def test_compose_publishes_temporal_and_its_ui_on_loopback_only() -> None:
    services = compose()["services"]
    assert services["temporal"]["ports"] == ["127.0.0.1:7233:7233"]
    assert services["temporal-ui"]["ports"] == ["127.0.0.1:8080:8080"]
    # On all interfaces: only the Tandem APIs, each of which authenticates every call.
    for name, spec in services.items():
        for port in spec.get("ports", []):
            if not str(port).startswith("127.0.0.1:"):
                assert name in SERVICE_PORTS, (name, port)


def test_compose_gives_each_signing_key_to_its_service_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    services = compose()["services"]
    key_volumes = {name for name in compose()["volumes"] if name.startswith("key-")}
    assert key_volumes == {f"key-{service}" for service in (*MINTERS, IDENTITY_PROVIDER)}
    for volume in key_volumes:
        holders = {
            name for name, spec in services.items() for v in spec.get("volumes", []) if v.startswith(f"{volume}:")
        }
        owner = volume.removeprefix("key-")
        assert holders == {"keys", owner if owner != IDENTITY_PROVIDER else "token"}, (volume, holders)
    for name in MINTERS | {"token"}:
        settings = container_settings(name, monkeypatch)
        owner = name if name != "token" else IDENTITY_PROVIDER
        assert str(settings.service_signing_key) == f"/var/lib/tandem/keys/{owner}/signing.pem", name
    for name in LONG_RUNNING - MINTERS:
        assert container_settings(name, monkeypatch).service_signing_key is None, name
    # Every service verifies with the trusted public keys, written by `keys` from the same volumes.
    for name in set(SERVICE_PORTS):
        assert container_settings(name, monkeypatch).service_keys is not None, name
        assert "service-trust:/var/lib/tandem/trust:ro" in services[name]["volumes"], name
    keys = services["keys"]
    assert keys["command"][:4] == [
        "--service-keys",
        "/var/lib/tandem/keys",
        "--trust-file",
        str(container_settings("cycles", monkeypatch).service_keys),
    ]
    # The image owns the mount points (a new volume takes their owner): one per key volume.
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    listed = re.search(r"for service in ([a-z -]+); do", dockerfile)
    assert listed is not None and set(listed.group(1).split()) == {v.removeprefix("key-") for v in key_volumes}


def test_the_image_holds_every_package_the_distribution_installs() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {name.rstrip("*") for name in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    text = (DEPLOY / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\w+) \./\1$", text, re.M))
    assert packages <= copied, sorted(packages - copied)


def test_kubernetes_kafka_is_sasl_ssl_with_one_kafka_user_per_deployment() -> None:
    kafka = k8s("ConfigMap")["tandem-kafka"]["data"]
    assert kafka["TANDEM_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert kafka["TANDEM_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert kafka["TANDEM_KAFKA_BOOTSTRAP_SERVERS"].endswith(":9093")  # Strimzi's TLS listener
    assert "PLAINTEXT" not in json.dumps([doc for doc in k8s_docs() if doc["kind"] != "Kustomization"])
    principals = {p.user for p in bootstrap_module().KAFKA_PRINCIPALS}
    clients = {*KAFKA_CLIENTS, "tracking-staleness"}
    for name, doc in [*k8s("Deployment").items(), *k8s("Job").items()]:
        env = pod_env(doc)
        uses_kafka = name in clients or name == "tandem-bootstrap"
        assert ("TANDEM_KAFKA_SECURITY_PROTOCOL" in env) == uses_kafka, name
        if not uses_kafka:
            continue
        user = env["TANDEM_KAFKA_SASL_USERNAME"]
        assert user in principals, name
        assert env["TANDEM_KAFKA_SASL_PASSWORD"] == {
            "secretKeyRef": {"name": f"tandem-kafka-{user.removeprefix('tandem-')}", "key": "password"}
        }, name
        ca = mounts(doc)[str(Path(env["TANDEM_KAFKA_SSL_CAFILE"]).parent)]
        assert ca["secret"]["secretName"] == "tandem-kafka-ca", name
    users = {
        name: pod_env(doc)["TANDEM_KAFKA_SASL_USERNAME"] for name, doc in k8s("Deployment").items() if name in clients
    }
    assert users["tracking"] == "tandem-ingest" and users["tracking-consumer"] == "tandem-tracking"
    assert {users[n] for n in clients - {"tracking", "tracking-consumer"}} == {"tandem-services"}


def test_the_strimzi_kafka_users_carry_exactly_the_bootstrap_acls() -> None:
    docs = [d for d in yaml.safe_load_all((K8S / "kafka" / "kafka-users.yaml").read_text()) if d]
    operations = {"Read": "read", "Write": "write", "Describe": "describe", "Create": "create"}
    declared = {
        doc["metadata"]["name"]: sorted(
            (acl["resource"]["type"], acl["resource"]["name"], acl["resource"]["patternType"], operations[op])
            for acl in doc["spec"]["authorization"]["acls"]
            for op in acl["operations"]
        )
        for doc in docs
    }
    assert all(doc["spec"]["authentication"]["type"] == "scram-sha-512" for doc in docs)
    assert all(doc["spec"]["authorization"]["type"] == "simple" for doc in docs)
    expected = {
        p.user: sorted((a.resource_type, a.resource_name, a.pattern_type, a.operation) for a in p.acls)
        for p in bootstrap_module().KAFKA_PRINCIPALS
    }
    assert declared == expected
    from services.tracking.consumer import CONSUMER_GROUP

    assert bootstrap_module().TRACKING_GROUP == CONSUMER_GROUP


def test_kubernetes_holds_no_minting_secret_and_each_signing_key_in_its_service_only() -> None:
    deployments = k8s("Deployment")
    for name, doc in [*deployments.items(), *k8s("Job").items()]:
        env = pod_env(doc)
        signing = {
            path: v for path, v in mounts(doc).items() if "secret" in v and "signing" in v["secret"]["secretName"]
        }
        service = "tracking" if name.startswith("tracking") else name  # its three Deployments all run its app
        if service in MINTERS:
            assert env["TANDEM_SERVICE_SIGNING_KEY"] == "/etc/tandem/signing/signing.pem", name
            assert signing == {"/etc/tandem/signing": mounts(doc)["/etc/tandem/signing"]}, name
            assert signing["/etc/tandem/signing"]["secret"]["secretName"] == f"tandem-signing-{service}", name
        else:
            assert "TANDEM_SERVICE_SIGNING_KEY" not in env and not signing, name
        holds_secret = "TANDEM_JWT_SECRET" in env
        assert holds_secret == (name == "console"), name
        if name in SERVICE_PORTS or name.startswith("tracking-"):
            trust = mounts(doc)[str(Path(env["TANDEM_SERVICE_KEYS"]).parent)]
            assert trust["configMap"]["name"] == "tandem-service-keys", name
    assert config_map()["TANDEM_JWKS_URL"].startswith("https://")
    assert set(deployments) >= MINTERS


def test_kubernetes_connects_every_temporal_client_over_mutual_tls() -> None:
    data = config_map()
    assert data["TANDEM_TEMPORAL_TLS"] == "true"
    files = {data[f"TANDEM_TEMPORAL_TLS_{part}"] for part in ("CA", "CERT", "KEY")}
    assert {str(Path(f).parent) for f in files} == {"/etc/tandem/temporal-tls"}
    # The worker, the cycles gateway, the committee's schedules, the nudges of goals, evaluation and
    # feedback, and the bootstrap's search attributes.
    clients = {"worker", "cycles", "committee", "goals", "evaluation", "feedback", "tandem-bootstrap"}
    for name, doc in [*k8s("Deployment").items(), *k8s("Job").items()]:
        mounted = mounts(doc).get("/etc/tandem/temporal-tls")
        assert (mounted is not None) == (name in clients), name
        if mounted is not None:
            assert mounted["secret"]["secretName"] == "tandem-temporal-tls", name
    # Those settings are a valid production configuration (the files are read when a client connects).
    fields: dict[str, Any] = {key.removeprefix("TANDEM_").lower(): value for key, value in data.items()}
    settings = Settings(**fields)
    assert settings.temporal_tls and settings.temporal_tls_cert is not None
