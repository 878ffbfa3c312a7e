"""Secrets: no default secret works outside dev, tokens expire and have a maximum lifetime,
and the Kafka credentials are validated and never printed."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import jwt
import pytest
from fastapi import APIRouter
from pydantic import ValidationError

from devtools.stack.local import SERVICE_PORTS
from services.common.app import create_service_app
from services.common.auth import Role, mint_token, requires
from services.common.kafka import KafkaSecurity
from services.common.settings import DEV_JWT_SECRET, Settings

ROOT = Path(__file__).resolve().parents[2]
DEV_SECRET_REFUSED = "TANDEM_JWT_SECRET is the development default"

protected = APIRouter()


@protected.get("/protected", dependencies=[requires(Role.OPS)])
async def protected_endpoint() -> dict[str, str]:
    return {"ok": "yes"}


def clean_env(**extra: str) -> dict[str, str]:
    """The process environment without any TANDEM_* setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    return {**env, **extra}


@pytest.mark.parametrize("service", sorted(SERVICE_PORTS))
def test_every_service_refuses_to_build_with_the_dev_secret_outside_dev(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in [k for k in os.environ if k.startswith("TANDEM_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("TANDEM_ENV", "prod")
    module = importlib.import_module(f"services.{service}.app")
    with pytest.raises(ValidationError, match=DEV_SECRET_REFUSED):
        module.app_from_env()
    monkeypatch.setenv("TANDEM_JWT_SECRET", "too-short")
    with pytest.raises(ValidationError, match="at least 32 characters"):
        module.app_from_env()


@pytest.mark.parametrize("env", ["prod", "test"])
def test_tandem_serve_exits_non_zero_with_the_reason(env: str) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "services.cli", "serve", "goals", "--port", "1"],
        cwd=ROOT,
        env=clean_env(TANDEM_ENV=env, COLUMNS="400", NO_COLOR="1"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = " ".join((completed.stdout + completed.stderr).split())
    assert completed.returncode != 0
    assert DEV_SECRET_REFUSED in output
    assert "Uvicorn running" not in output


def test_the_dev_secret_is_accepted_only_with_env_dev() -> None:
    assert Settings(env="dev", jwt_secret=DEV_JWT_SECRET).jwt_secret == DEV_JWT_SECRET
    for env in ("test", "prod"):
        with pytest.raises(ValidationError, match="TANDEM_ENV=dev"):
            Settings(env=env, jwt_secret=DEV_JWT_SECRET)
    # With an OIDC issuer the HS256 secret is not used at all.
    assert Settings(env="prod", jwks_url="https://issuer.example.com/jwks").jwks_url


def test_a_default_token_lifetime_above_the_maximum_is_refused() -> None:
    with pytest.raises(ValidationError, match="TANDEM_TOKEN_MAX_TTL_SECONDS"):
        Settings(env="dev", token_ttl_seconds=48 * 3600)


@pytest.fixture
async def client(settings: Settings, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app_settings = settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{tmp_path}/{{service}}.db"})
    app = create_service_app(service="secretstest", settings=app_settings, description="secrets", routers=[protected])
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_tokens_without_expiry_or_beyond_the_maximum_lifetime_are_401(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    claims = {"sub": "ops-1", "roles": ["ops"], "iss": settings.jwt_issuer, "aud": settings.jwt_audience}
    no_exp = jwt.encode(claims, settings.jwt_secret, algorithm="HS256")
    response = await client.get("/protected", headers=bearer(no_exp))
    assert response.status_code == 401
    assert '"exp"' in response.json()["detail"]

    too_long = mint_token(settings, sub="ops-1", roles=["ops"], ttl_seconds=settings.token_max_ttl_seconds + 3600)
    response = await client.get("/protected", headers=bearer(too_long))
    assert response.status_code == 401
    assert response.json()["detail"] == (
        f"token lifetime exceeds the maximum of {settings.token_max_ttl_seconds}s "
        "(TANDEM_TOKEN_MAX_TTL_SECONDS); request a shorter-lived token"
    )

    normal = mint_token(settings, sub="ops-1", roles=["ops"])
    assert (await client.get("/protected", headers=bearer(normal))).json() == {"ok": "yes"}


def test_kafka_sasl_needs_credentials_and_never_prints_the_password() -> None:
    with pytest.raises(ValidationError, match="TANDEM_KAFKA_SASL_USERNAME and TANDEM_KAFKA_SASL_PASSWORD"):
        Settings(env="dev", kafka_security_protocol="SASL_SSL", kafka_sasl_username="tracking")
    with pytest.raises(ValidationError, match="does not use TLS"):
        Settings(env="dev", kafka_ssl_cafile=Path("/etc/ssl/ca.pem"))
    with pytest.raises(ValidationError, match="both TANDEM_KAFKA_SSL_CERTFILE and TANDEM_KAFKA_SSL_KEYFILE"):
        Settings(env="dev", kafka_security_protocol="SSL", kafka_ssl_certfile=Path("/etc/tandem/client.pem"))
    settings = Settings(
        env="dev",
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="tracking",
        kafka_sasl_password="s3cret-kafka-password",
    )
    security = KafkaSecurity.from_settings(settings)
    assert security is not None
    assert security.client_options() == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "tracking",
        "sasl_plain_password": "s3cret-kafka-password",
    }
    for text in (repr(settings), str(settings.model_dump()), repr(security)):
        assert "s3cret-kafka-password" not in text
    assert KafkaSecurity.from_settings(Settings(env="dev")) is None


def test_kafka_tls_options_build_an_ssl_context(tmp_path: Path) -> None:
    security = KafkaSecurity(protocol="SSL")
    options = security.client_options()
    assert options["security_protocol"] == "SSL"
    assert options["ssl_context"].verify_mode.name == "CERT_REQUIRED"
    with pytest.raises(ValueError, match="unknown Kafka security protocol"):
        KafkaSecurity(protocol="TLS")
    with pytest.raises(ValueError, match="needs a SASL username and password"):
        KafkaSecurity(protocol="SASL_SSL", username="tracking")
    assert re.search(r"password=", repr(KafkaSecurity(protocol="SASL_SSL", username="u", password="p"))) is None


def leaked_parts(secret: str, text: str, width: int = 5) -> set[str]:
    """Every ``width``-character piece of ``secret`` that appears in ``text``."""
    return {secret[i : i + width] for i in range(len(secret) - width + 1) if secret[i : i + width] in text}


SHORT_SECRET = "Zq9-short-s3cret-Xy"
LONG_SECRET = "Lw7-a-long-enough-production-secret-Kp2"


@pytest.mark.parametrize(
    ("secret", "extra"),
    [
        (SHORT_SECRET, {}),
        (LONG_SECRET, {"kafka_security_protocol": "SASL_SSL"}),
        (LONG_SECRET, {"token_ttl_seconds": 48 * 3600}),
        (LONG_SECRET, {"token_ttl_seconds": "not-a-number"}),
    ],
)
def test_start_up_errors_never_print_any_part_of_the_jwt_secret(secret: str, extra: dict[str, object]) -> None:
    """Issue 14: pydantic's error text quoted the settings it was given, the secret's tail included."""
    with pytest.raises(ValidationError) as refused:
        Settings(env="prod", jwt_secret=secret, **extra)  # type: ignore[arg-type]
    for text in (str(refused.value), repr(refused.value)):
        assert not leaked_parts(secret, text), text
    accepted = Settings(env="prod", jwt_secret=LONG_SECRET)
    for text in (repr(accepted), str(accepted)):
        assert not leaked_parts(LONG_SECRET, text), text


def test_tandem_serve_and_the_worker_print_no_part_of_the_secret() -> None:
    for argv in (["serve", "goals", "--port", "1"], ["worker", "--metrics-port", "1"]):
        completed = subprocess.run(
            [sys.executable, "-m", "services.cli", *argv],
            cwd=ROOT,
            env=clean_env(TANDEM_ENV="prod", TANDEM_JWT_SECRET=SHORT_SECRET, COLUMNS="400", NO_COLOR="1"),
            capture_output=True,
            text=True,
            timeout=60,
        )
        output = completed.stdout + completed.stderr
        assert completed.returncode != 0, output
        assert "at least 32 characters" in " ".join(output.split()), output
        assert not leaked_parts(SHORT_SECRET, output), output
