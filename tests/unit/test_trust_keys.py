"""Per-service signing keys (issue 14, item 8): no pod holds a secret that mints any token.

Each service that calls another signs with its own key; every verifier trusts a set of public
keys, each tied to its service, and a token one of them signs may carry only what that service
needs. Production neither mints nor accepts HS256; development keeps the HS256 secret, so the
local stack and the test suite need no keys.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import HTTPException
from pydantic import ValidationError

from services.common.auth import (
    IDENTITY_PROVIDER,
    SERVICE_KEY_POLICIES,
    TokenVerifier,
    load_service_keys,
    mint_token,
    public_jwk,
)
from services.common.client import Actor, ServiceTokens
from services.common.settings import DEV_JWT_SECRET, Settings


def write_key(directory: Path, name: str, key: Any) -> Path:
    path = directory / f"{name}.pem"
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.write_bytes(pem)
    return path


@pytest.fixture
def keys() -> dict[str, Any]:
    """An EC signing key per service of the policy table, plus the identity provider's (RSA)."""
    made: dict[str, Any] = {name: ec.generate_private_key(ec.SECP256R1()) for name in SERVICE_KEY_POLICIES}
    made[IDENTITY_PROVIDER] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return made


@pytest.fixture
def trust_file(tmp_path: Path, keys: dict[str, Any]) -> Path:
    path = tmp_path / "service-keys.json"
    path.write_text(json.dumps({"keys": [public_jwk(k.public_key(), service=s) for s, k in keys.items()]}))
    return path


def prod(trust_file: Path, **extra: Any) -> Settings:
    return Settings(env="prod", service_keys=trust_file, **extra)


SignedAs = Callable[[str], Settings]


@pytest.fixture
def signed_as(keys: dict[str, Any], tmp_path: Path, trust_file: Path) -> SignedAs:
    """The settings of a service's own process: its key, and the same trust file as everyone."""
    return lambda service: prod(trust_file, service_signing_key=write_key(tmp_path, service, keys[service]))


@pytest.fixture
def verifier(trust_file: Path) -> TokenVerifier:
    """Any production service's verifier."""
    return TokenVerifier(prod(trust_file))


def refused(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(HTTPException) as caught:
        verifier.verify(token)
    assert caught.value.status_code == 401
    return str(caught.value.detail)


# -- what each service key may carry ------------------------------------------------------------
def test_each_service_signs_with_its_own_key_and_the_others_accept_what_it_needs(
    verifier: TokenVerifier, signed_as: SignedAs, keys: dict[str, Any]
) -> None:
    worker = signed_as("worker")
    token = ServiceTokens(worker, sub="system:worker", roles=("hr_admin", "ops"))()
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256" and header["kid"] == public_jwk(keys["worker"].public_key())["kid"]
    principal = verifier.verify(token)
    assert principal.sub == "system:worker" and principal.roles == {"hr_admin", "ops"}

    feedback = signed_as("feedback")
    acting = ServiceTokens(feedback, sub="system:feedback", roles=("hr_admin",))(Actor(sub="hr-ann", employee_id="e-7"))
    principal = verifier.verify(acting)
    assert principal.has("hr_admin") and principal.acting_employee_id == "e-7"


def test_a_token_with_roles_beyond_its_key_s_allowance_is_refused(verifier: TokenVerifier, signed_as: SignedAs) -> None:
    goals = signed_as("goals")
    assert "may not carry the roles ['ops']" in refused(
        verifier, mint_token(goals, sub="system:goals", roles=["hr_admin", "ops"])
    )
    feedback = signed_as("feedback")
    actor = {"sub": "hr-ann"}
    assert "may not carry the roles ['auditor']" in refused(
        verifier, mint_token(feedback, sub="system:feedback", roles=["hr_admin", "auditor"], actor=actor)
    )


def test_feedback_mints_hr_admin_only_for_the_person_it_acts_for(verifier: TokenVerifier, signed_as: SignedAs) -> None:
    feedback = signed_as("feedback")
    assert "only on behalf of a person" in refused(
        verifier, mint_token(feedback, sub="system:feedback", roles=["hr_admin"])
    )
    # Nor can it pass itself off as someone else, a person or a department.
    assert "may sign only for ['system:feedback']" in refused(
        verifier, mint_token(feedback, sub="hr-ann", roles=["hr_admin"], actor={"sub": "hr-ann"})
    )
    assert "may not carry ['employee_id']" in refused(
        verifier,
        mint_token(feedback, sub="system:feedback", roles=["hr_admin"], employee_id="e-7", actor={"sub": "hr-ann"}),
    )
    worker = signed_as("worker")
    assert "may not carry ['department_id']" in refused(
        verifier, mint_token(worker, sub="system:worker", roles=["ops"], department_id="sales")
    )


def test_a_service_key_that_is_not_trusted_mints_nothing(
    verifier: TokenVerifier, keys: dict[str, Any], tmp_path: Path, trust_file: Path
) -> None:
    rogue = prod(trust_file, service_signing_key=write_key(tmp_path, "rogue", ec.generate_private_key(ec.SECP256R1())))
    assert "not signed by a trusted key" in refused(
        verifier, mint_token(rogue, sub="system:worker", roles=["hr_admin"])
    )
    # A trusted key id on a token signed with another key: the signature decides.
    kid = public_jwk(keys["worker"].public_key())["kid"]
    forged = prod(
        trust_file,
        service_signing_key=write_key(tmp_path, "forged", ec.generate_private_key(ec.SECP256R1())),
        service_signing_key_id=kid,
    )
    assert (
        refused(verifier, mint_token(forged, sub="system:worker", roles=["hr_admin"])) == "token signature is invalid"
    )


def test_the_identity_provider_key_signs_people_s_tokens(verifier: TokenVerifier, signed_as: SignedAs) -> None:
    issuer = signed_as(IDENTITY_PROVIDER)
    token = mint_token(issuer, sub="hr-ann", roles=["hr_admin"], employee_id="e-7")
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    principal = verifier.verify(token)
    assert principal.sub == "hr-ann" and principal.employee_id == "e-7"


# -- production refuses the shared secret -----------------------------------------------------------
def test_production_neither_mints_nor_accepts_hs256(trust_file: Path) -> None:
    secret = "s" * 48
    with pytest.raises(ValueError, match="shared HS256 secret"):
        mint_token(Settings(env="prod", jwt_secret=secret), sub="system:worker", roles=["hr_admin"])
    with pytest.raises(ValueError, match="TANDEM_SERVICE_SIGNING_KEY"):
        ServiceTokens(Settings(env="prod", jwt_secret=secret), sub="system:worker", roles=("hr_admin",))
    with pytest.raises(ValueError, match="only with public keys"):
        TokenVerifier(Settings(env="prod", jwt_secret=secret))
    verifier = TokenVerifier(prod(trust_file, jwt_secret=secret))
    hs256 = mint_token(Settings(env="test", jwt_secret=secret), sub="system:worker", roles=["hr_admin"])
    assert "not signed by a trusted key" in refused(verifier, hs256)


def test_hs256_cannot_pose_as_a_service_key(verifier: TokenVerifier, keys: dict[str, Any]) -> None:
    """Algorithm confusion: an HS256 token keyed with a service's public key, under its kid."""
    kid = public_jwk(keys["worker"].public_key())["kid"]
    pem = (
        keys["worker"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    claims = {"sub": "system:worker", "roles": ["hr_admin"], "iss": "tandem-dev", "aud": "tandem"}
    # Signed by hand: PyJWT itself refuses to use a PEM public key as an HMAC secret.
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    body = _b64(json.dumps({**claims, "exp": int(time.time()) + 60}).encode())
    signature = _b64(hmac.new(pem, f"{head}.{body}".encode(), hashlib.sha256).digest())
    assert "invalid token" in refused(verifier, f"{head}.{body}.{signature}")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_development_keeps_the_hs256_secret_without_any_key() -> None:
    dev = Settings(env="dev")
    assert dev.jwt_secret == DEV_JWT_SECRET
    token = ServiceTokens(dev, sub="system:worker", roles=("hr_admin", "ops"))()
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    assert TokenVerifier(dev).verify(token).sub == "system:worker"
    # A test configuration with a secret of its own verifies HS256 too; the public dev secret does not.
    assert TokenVerifier(Settings(env="test", jwt_secret="t" * 40)).accepts_hs256


# -- the trusted-keys file ----------------------------------------------------------------------------
def test_the_trusted_keys_file_holds_public_keys_of_known_services_only(tmp_path: Path, keys: dict[str, Any]) -> None:
    def load(*entries: dict[str, Any]) -> None:
        path = tmp_path / "keys.json"
        path.write_text(json.dumps({"keys": list(entries)}))
        load_service_keys(path)

    public = public_jwk(keys["worker"].public_key(), service="worker")
    private = {**public, **jwt.algorithms.ECAlgorithm.to_jwk(keys["worker"], as_dict=True)}
    with pytest.raises(ValueError, match="private key material"):
        load(private)
    with pytest.raises(ValueError, match="tandem_service must be one of"):
        load({**public, "tandem_service": "console"})
    with pytest.raises(ValueError, match="listed twice"):
        load(public, public)
    with pytest.raises(ValueError, match="alg must be ES256 or RS256"):
        load({**public, "alg": "HS256"})
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(ValueError, match="at least 2048 bits"):
        public_jwk(small.public_key())


def test_a_signing_key_id_needs_its_key() -> None:
    with pytest.raises(ValidationError, match="TANDEM_SERVICE_SIGNING_KEY_ID names a key"):
        Settings(env="dev", service_signing_key_id="worker-1")


# -- the consumer-side department check and Temporal options ---------------------------------------
def test_the_consumer_side_department_check_is_on_in_production_only_by_default(trust_file: Path) -> None:
    assert prod(trust_file).kafka_enforce_principal is True
    assert Settings(env="dev").kafka_enforce_principal is False
    assert Settings(env="test", jwt_secret="t" * 40).kafka_enforce_principal is False
    assert prod(trust_file, kafka_enforce_principal=False).kafka_enforce_principal is False


def test_temporal_tls_mtls_and_api_key_options(tmp_path: Path) -> None:
    from temporalio.service import TLSConfig

    assert Settings(env="dev").temporal_client_options() == {}
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_bytes(name.encode())
    settings = Settings(
        env="dev",
        temporal_tls=True,
        temporal_tls_ca=tmp_path / "ca.pem",
        temporal_tls_cert=tmp_path / "cert.pem",
        temporal_tls_key=tmp_path / "key.pem",
        temporal_tls_server_name="frontend.temporal",
        temporal_api_key="k-123",
    )
    options = settings.temporal_client_options()
    assert options["api_key"] == "k-123" and "k-123" not in repr(settings)
    assert options["tls"] == TLSConfig(
        server_root_ca_cert=b"ca.pem",
        client_cert=b"cert.pem",
        client_private_key=b"key.pem",
        domain="frontend.temporal",
    )
    with pytest.raises(ValidationError, match="TANDEM_TEMPORAL_API_KEY set without TANDEM_TEMPORAL_TLS=true"):
        Settings(env="dev", temporal_api_key="k-123")
    with pytest.raises(ValidationError, match="needs both TANDEM_TEMPORAL_TLS_CERT and TANDEM_TEMPORAL_TLS_KEY"):
        Settings(env="dev", temporal_tls=True, temporal_tls_cert=tmp_path / "cert.pem")
    missing = Settings(env="dev", temporal_tls=True, temporal_tls_ca=tmp_path / "nope.pem")
    with pytest.raises(ValueError, match="TANDEM_TEMPORAL_TLS_CA=.* cannot be read"):
        missing.temporal_client_options()


async def test_every_temporal_client_connects_with_the_options(monkeypatch: pytest.MonkeyPatch) -> None:
    """``workflows.worker.connect`` passes them on, read from the environment when not given."""
    from temporalio.client import Client

    from workflows.worker import connect

    seen: list[dict[str, Any]] = []

    async def fake_connect(address: str, **kwargs: Any) -> str:
        seen.append({"address": address, **kwargs})
        return "client"

    monkeypatch.setattr(Client, "connect", fake_connect)
    monkeypatch.setenv("TANDEM_TEMPORAL_TLS", "true")
    monkeypatch.setenv("TANDEM_TEMPORAL_API_KEY", "k-env")
    await connect("temporal.example:7233", "tandem")  # the committee service's call
    await connect("temporal.example:7233", options={})
    assert seen[0]["api_key"] == "k-env" and seen[0]["tls"] is not None and seen[0]["namespace"] == "tandem"
    assert "api_key" not in seen[1] and "tls" not in seen[1]
