"""Validated settings, read from ``TANDEM_*`` environment variables.

Production is configured only through the environment. The development JWT
secret is refused unless ``TANDEM_ENV=dev``. No part of a secret is ever printed: validation
errors do not quote the values they were given (``hide_input_in_errors``), and the JWT secret is
left out of the settings' ``repr`` (the Kafka passwords and the Temporal API key are ``SecretStr``).

Production (``TANDEM_ENV=prod``) verifies tokens only with public keys: the identity provider's
(``TANDEM_JWKS_URL``) and the services' own (``TANDEM_SERVICE_KEYS``); a process that mints service
tokens signs them with its own ``TANDEM_SERVICE_SIGNING_KEY`` (docs/security.md, "Service keys").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEV_JWT_SECRET", "KafkaProvider", "Settings", "TemporalClientSettings"]

DEV_JWT_SECRET = "tandem-dev-secret-change-me-0123456789"
"""Only accepted with ``TANDEM_ENV=dev``; anything else refuses to start with it."""

KafkaProvider = Literal["apache", "embedded", "external", "auto"]

# hide_input_in_errors: pydantic's error text would otherwise quote the input, and for the
# model-level checks below that input is every setting, the JWT secret included.
_CONFIG = SettingsConfigDict(env_prefix="TANDEM_", extra="ignore", env_ignore_empty=True, hide_input_in_errors=True)


class TemporalClientSettings(BaseSettings):
    """How every Temporal client of a process connects: TLS, mutual TLS, an API key.

    ``Settings`` holds these fields too; this class exists on its own so that a client built from
    an address alone (``workflows.worker.connect``) reads the same ``TANDEM_TEMPORAL_*`` variables,
    and nothing else, rather than connecting in clear while the rest of the process uses TLS.
    """

    model_config = _CONFIG

    temporal_tls: bool = Field(
        default=False,
        description="Connect to Temporal over TLS (Temporal Cloud, or a cluster with TLS on its frontend).",
    )
    temporal_tls_ca: Path | None = Field(
        default=None, description="PEM CA bundle that signed the Temporal frontend's certificate (else the system CAs)."
    )
    temporal_tls_cert: Path | None = Field(default=None, description="Client certificate (PEM) for mutual TLS.")
    temporal_tls_key: Path | None = Field(default=None, description="Client private key (PEM) for mutual TLS.")
    temporal_tls_server_name: str | None = Field(
        default=None,
        description="Server name to verify the frontend's certificate against, when not the address's host.",
    )
    temporal_api_key: SecretStr | None = Field(
        default=None, description="API key sent with every Temporal call (Temporal Cloud API-key authentication)."
    )

    @model_validator(mode="after")
    def _check_temporal_tls(self) -> TemporalClientSettings:
        if (self.temporal_tls_cert is None) != (self.temporal_tls_key is None):
            raise ValueError("Temporal mTLS needs both TANDEM_TEMPORAL_TLS_CERT and TANDEM_TEMPORAL_TLS_KEY")
        tls_only = {
            "TANDEM_TEMPORAL_TLS_CA": self.temporal_tls_ca,
            "TANDEM_TEMPORAL_TLS_CERT": self.temporal_tls_cert,
            "TANDEM_TEMPORAL_TLS_SERVER_NAME": self.temporal_tls_server_name,
            # An API key is a bearer credential: sent without TLS, anyone on the path can replay it.
            "TANDEM_TEMPORAL_API_KEY": self.temporal_api_key,
        }
        given = [name for name, value in tls_only.items() if value is not None]
        if given and not self.temporal_tls:
            raise ValueError(f"{', '.join(given)} set without TANDEM_TEMPORAL_TLS=true; set it, or leave them out")
        return self

    def temporal_client_options(self) -> dict[str, Any]:
        """Keyword arguments for ``temporalio.client.Client.connect``: ``tls`` and ``api_key``, or none.

        Reads the certificate files (at connect time, never at import); a file that cannot be read is a
        ``ValueError`` naming its setting.
        """
        if not self.temporal_tls:
            return {}
        from temporalio.service import TLSConfig

        def read(name: str, path: Path | None) -> bytes | None:
            if path is None:
                return None
            try:
                return path.read_bytes()
            except OSError as exc:
                raise ValueError(f"{name}={path} cannot be read: {exc.strerror or exc}") from exc

        options: dict[str, Any] = {
            "tls": TLSConfig(
                server_root_ca_cert=read("TANDEM_TEMPORAL_TLS_CA", self.temporal_tls_ca),
                client_cert=read("TANDEM_TEMPORAL_TLS_CERT", self.temporal_tls_cert),
                client_private_key=read("TANDEM_TEMPORAL_TLS_KEY", self.temporal_tls_key),
                domain=self.temporal_tls_server_name,
            )
        }
        if self.temporal_api_key is not None:
            options["api_key"] = self.temporal_api_key.get_secret_value()
        return options


class Settings(TemporalClientSettings):
    model_config = _CONFIG

    env: Literal["dev", "test", "prod"] = Field(default="prod", description="Deployment environment.")
    state_dir: Path = Field(default=Path(".tandem"), description="Where the local stack keeps data and logs.")

    database_url: str = Field(
        default="sqlite+aiosqlite:///.tandem/db/{service}.db",
        description=(
            "SQLAlchemy async URL: sqlite+aiosqlite:///path or postgresql+asyncpg://user@host/db. "
            "'{service}' is replaced by the service name, so each service can own its own database."
        ),
    )
    kafka: KafkaProvider = Field(default="auto", description="Which Kafka the local stack starts.")
    kafka_bootstrap_servers: str = Field(default="127.0.0.1:9092", description="Bootstrap servers.")
    kafka_idempotence: bool = Field(
        default=True, description="Use an idempotent producer; falls back if the broker lacks it."
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL"] = Field(
        default="PLAINTEXT",
        description="How clients reach Kafka: SASL_SSL (SCRAM over TLS) or SSL (mTLS) in production.",
    )
    kafka_sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        default="SCRAM-SHA-512", description="SASL mechanism with SASL_PLAINTEXT / SASL_SSL."
    )
    kafka_sasl_username: str | None = Field(default=None, description="SCRAM user (the service's Kafka principal).")
    kafka_sasl_password: SecretStr | None = Field(default=None, description="SCRAM password (a secret).")
    kafka_ssl_cafile: Path | None = Field(
        default=None, description="PEM CA bundle that signed the brokers' certificates (else the system CAs)."
    )
    kafka_ssl_certfile: Path | None = Field(default=None, description="Client certificate (PEM) for mTLS.")
    kafka_ssl_keyfile: Path | None = Field(default=None, description="Client private key (PEM) for mTLS.")
    kafka_ssl_key_password: SecretStr | None = Field(default=None, description="Password of the client key.")
    kafka_enforce_principal: bool = Field(
        # On in production, where only the ingest gateway may write metrics.v1 (docs/security.md); off in
        # development, where the simulator and `tandem simulate` write without the gateway's headers.
        default_factory=lambda data: data.get("env") == "prod",
        description=(
            "Tracking consumer: dead-letter metric records whose tandem-principal-department header (stamped by "
            "the ingest gateway) is missing or names another department than the event's department_id "
            "(default: on with TANDEM_ENV=prod, else off)."
        ),
    )
    temporal_address: str = Field(default="127.0.0.1:7233")
    temporal_namespace: str = Field(default="default")
    temporal_ui_url: str = Field(default="http://127.0.0.1:8233")

    outbox_relay: bool = Field(
        default=True, description="Publish this service's outbox rows to Kafka from a background task."
    )
    tracking_consumer: bool | None = Field(
        default=None,
        description="Run the metrics consumer inside the tracking service (default: on, off with TANDEM_ENV=test).",
    )
    tracking_rollup_interval: float | None = Field(
        default=None,
        ge=0,
        description="Seconds between the tracking service's live roll-up pushes to goals; 0 = off "
        "(default: 2, off with TANDEM_ENV=test).",
    )
    tracking_staleness_interval: float | None = Field(
        default=None,
        ge=0,
        description="Seconds between the tracking service's staleness evaluations; 0 = off "
        "(default: 60, 0 with TANDEM_ENV=test).",
    )
    cycle_workflows: bool = Field(
        default=True, description="Starting a cycle also starts its Temporal workflow (off in API-only tests)."
    )
    auto_migrate: bool = Field(default=True, description="Run the service's migrations at start-up.")

    cycles_url: str = Field(default="http://127.0.0.1:8000")
    goals_url: str = Field(default="http://127.0.0.1:8001")
    tracking_url: str = Field(default="http://127.0.0.1:8002")
    evaluation_url: str = Field(default="http://127.0.0.1:8003")
    feedback_url: str = Field(default="http://127.0.0.1:8004")
    results_url: str = Field(default="http://127.0.0.1:8005")
    committee_url: str = Field(default="http://127.0.0.1:8007", description="The performance committee service.")
    console_url: str = Field(
        default="http://127.0.0.1:8006", description="The web console (services/console), for links to its pages."
    )
    worker_url: str = Field(default="http://127.0.0.1:8009", description="The worker's /healthz and /metrics.")

    notify_webhook_url: str | None = Field(
        default=None, description="POST every reminder/escalation as JSON to this URL (pluggable sender)."
    )
    smtp_host: str | None = Field(default=None, description="Send reminders/escalations by e-mail via this host.")
    smtp_port: int = Field(default=25)
    smtp_from: str = Field(default="tandem@localhost")
    hr_email: str | None = Field(default=None, description="Where escalations to HR are e-mailed.")

    tracing_enabled: bool = Field(
        default=False, description="Emit OpenTelemetry spans (HTTP requests, Temporal workflows and activities)."
    )
    tracing_exporter: Literal["auto", "otlp", "console", "memory"] = Field(
        default="auto", description="Where spans go; 'auto' = OTLP when an OTLP exporter is installed, else console."
    )
    otlp_endpoint: str | None = Field(
        default=None, description="OTLP collector URL; unset = the exporter's default / OTEL_EXPORTER_OTLP_* env."
    )

    jwt_secret: str = Field(
        default=DEV_JWT_SECRET,
        repr=False,
        description="HS256 secret of development and test tokens; production never mints or accepts HS256 tokens.",
    )
    jwt_issuer: str = Field(default="tandem-dev")
    jwt_audience: str = Field(default="tandem")
    jwks_url: str | None = Field(default=None, description="RS256 JWKS URL of the production OIDC issuer.")
    jwks_timeout_seconds: float = Field(
        default=3.0,
        gt=0,
        le=30,
        description="Timeout of one JWKS fetch (fetched in the background, never per request).",
    )
    jwks_refresh_seconds: float = Field(
        default=300.0,
        gt=0,
        description="Refetch the JWKS when the keys are older than this (or a token names a new key).",
    )
    service_signing_key: Path | None = Field(
        default=None,
        description=(
            "PEM private key (EC P-256 or RSA 2048+) this process signs its service tokens with (ES256/RS256); "
            "needed in production by every process that mints tokens."
        ),
    )
    service_signing_key_id: str | None = Field(
        default=None,
        max_length=200,
        description="The signing key's kid (default: its RFC 7638 JWK thumbprint, which bootstrap.py writes).",
    )
    service_keys: Path | None = Field(
        default=None,
        description=(
            "JSON Web Key Set of the trusted service public keys, each naming its service (tandem_service); a "
            "token one of them signs may carry only what that service needs (services/common/auth.py)."
        ),
    )
    token_ttl_seconds: int = Field(default=8 * 3600, gt=0)
    token_max_ttl_seconds: int = Field(
        default=24 * 3600, gt=0, description="Tokens whose expiry is further away than this are refused (401)."
    )

    max_body_bytes: int = Field(
        default=1024 * 1024, gt=0, description="Largest request body (413 above it); see services/common/limits.py."
    )
    max_bulk_body_bytes: int = Field(
        default=32 * 1024 * 1024,
        gt=0,
        description="Largest body of the whole-cycle bulk pushes (org import, participant snapshots, exports).",
    )
    ingest_rate_per_second: float = Field(
        default=1000.0, ge=0, description="Metric events per second per department on HTTP ingest (0 = unlimited)."
    )
    ingest_rate_burst: int = Field(
        default=5000, ge=1, description="Events a department may send at once before ingest_rate_per_second applies."
    )

    def database_url_for(self, service: str) -> str:
        """The database URL of one service (``{service}`` substituted)."""
        return self.database_url.replace("{service}", service)

    @property
    def public_keys_configured(self) -> bool:
        """Whether tokens are signed and checked with public keys (identity provider or service keys)."""
        return self.jwks_url is not None or self.service_keys is not None or self.service_signing_key is not None

    @model_validator(mode="after")
    def _refuse_dev_secret(self) -> Settings:
        if self.jwks_url is not None and not self.jwks_url.strip():
            self.jwks_url = None
        if self.env != "dev" and not self.public_keys_configured and self.jwt_secret == DEV_JWT_SECRET:
            raise ValueError(
                "TANDEM_JWT_SECRET is the development default; set a real secret (or TANDEM_JWKS_URL), "
                "or set TANDEM_ENV=dev for local use"
            )
        # Also with public keys: the console keys its CSRF tokens with the secret.
        if len(self.jwt_secret) < 32:
            raise ValueError("TANDEM_JWT_SECRET must be at least 32 characters")
        if self.service_signing_key_id is not None and self.service_signing_key is None:
            raise ValueError("TANDEM_SERVICE_SIGNING_KEY_ID names a key but TANDEM_SERVICE_SIGNING_KEY is not set")
        return self

    @model_validator(mode="after")
    def _check_token_ttl(self) -> Settings:
        if self.token_ttl_seconds > self.token_max_ttl_seconds:
            raise ValueError(
                f"TANDEM_TOKEN_TTL_SECONDS ({self.token_ttl_seconds}) exceeds TANDEM_TOKEN_MAX_TTL_SECONDS "
                f"({self.token_max_ttl_seconds}); tokens minted with it would be refused"
            )
        return self

    @model_validator(mode="after")
    def _check_kafka_security(self) -> Settings:
        protocol = self.kafka_security_protocol
        if protocol.startswith("SASL_") and not (self.kafka_sasl_username and self.kafka_sasl_password):
            raise ValueError(
                f"TANDEM_KAFKA_SECURITY_PROTOCOL={protocol} needs TANDEM_KAFKA_SASL_USERNAME and "
                "TANDEM_KAFKA_SASL_PASSWORD"
            )
        if (self.kafka_ssl_certfile is None) != (self.kafka_ssl_keyfile is None):
            raise ValueError("mTLS needs both TANDEM_KAFKA_SSL_CERTFILE and TANDEM_KAFKA_SSL_KEYFILE")
        tls_files = (self.kafka_ssl_cafile, self.kafka_ssl_certfile, self.kafka_ssl_keyfile)
        if not protocol.endswith("SSL") and any(f is not None for f in tls_files):
            raise ValueError(
                f"TANDEM_KAFKA_SSL_* files are set but TANDEM_KAFKA_SECURITY_PROTOCOL={protocol} does not use TLS; "
                "use SSL or SASL_SSL"
            )
        return self
