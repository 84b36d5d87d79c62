"""Settings shared by every service, read from the environment (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEMO_PSEUDONYM_KEY = "demo-pseudonym-key"
PLACEHOLDER_SECRETS = frozenset({DEMO_PSEUDONYM_KEY, "changethis", "change-me", "changeme", "secret", "password",
                                 "placeholder", "x"})
CODESYSTEM_BASE = "https://regiozorg.example/fhir/CodeSystem/"


class ServiceSettings(BaseSettings):
    """Common settings; each service subclasses it to name itself and its database variable."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    service_name: str = "service"
    env: Literal["demo", "production", "test"] = Field("demo", validation_alias="REGIOZORG_ENV")
    data_dir: Path = Field(Path(".regiozorg"), validation_alias="REGIOZORG_DATA_DIR")
    kafka_bootstrap: str = Field("127.0.0.1:19092", validation_alias="REGIOZORG_KAFKA_BOOTSTRAP")
    database_url: str | None = None
    pseudonym_key: str = Field(DEMO_PSEUDONYM_KEY, validation_alias="REGIOZORG_PSEUDONYM_KEY")
    issuer: str = Field("http://127.0.0.1:8001", validation_alias="REGIOZORG_ISSUER")
    jwks_url: str | None = Field(None, validation_alias="REGIOZORG_JWKS_URL")
    token_audience: str = Field("regiozorg", validation_alias="REGIOZORG_TOKEN_AUDIENCE")
    codesystem_base: str = Field(CODESYSTEM_BASE, validation_alias="REGIOZORG_CODESYSTEM_BASE")
    topic_partitions: int = Field(4, validation_alias="REGIOZORG_TOPIC_PARTITIONS")
    broker_check_seconds: float = Field(1.0, validation_alias="REGIOZORG_BROKER_CHECK_SECONDS")
    consumer_max_attempts: int = Field(5, validation_alias="REGIOZORG_CONSUMER_MAX_ATTEMPTS")
    # The longest a consumer's fetch waits on the broker. Kafka answers as soon as a record arrives; the
    # embedded broker only when the wait is over, so on it this bounds each hop's latency (about half of it
    # on average, measured) against idle fetches (one per consumer per wait).
    consumer_fetch_wait_ms: int = Field(100, ge=1, le=500, validation_alias="REGIOZORG_CONSUMER_FETCH_WAIT_MS")
    # The outbox relay is woken by every commit (LISTEN/NOTIFY on PostgreSQL, in-process on SQLite); this
    # timer only covers a lost signal or rows made pending by hand.
    outbox_fallback_seconds: float = Field(1.0, gt=0, validation_alias="REGIOZORG_OUTBOX_FALLBACK_SECONDS")
    max_body_bytes: int = Field(2_000_000, validation_alias="REGIOZORG_MAX_BODY_BYTES")
    # Where people's browsers reach each service (console redirects, single sign-on).
    triage_public_url: str = Field("http://127.0.0.1:8001", validation_alias="TRIAGE_PUBLIC_URL")
    coordination_public_url: str = Field("http://127.0.0.1:8002", validation_alias="COORDINATION_PUBLIC_URL")
    billing_public_url: str = Field("http://127.0.0.1:8003", validation_alias="BILLING_SHADOW_PUBLIC_URL")
    console_session_hours: int = Field(10, validation_alias="REGIOZORG_CONSOLE_SESSION_HOURS")
    # Where services reach coordination's API themselves (inside a compose network: http://coordination:8002).
    coordination_api_url: str | None = Field(None, validation_alias="COORDINATION_API_URL")
    # An external OpenID Connect issuer replaces the built-in one for console login by setting these
    # (its id_token must carry the console role in the claim named by REGIOZORG_OIDC_ROLE_CLAIM).
    oidc_authorization_endpoint: str | None = Field(None, validation_alias="REGIOZORG_OIDC_AUTHORIZATION_ENDPOINT")
    oidc_token_endpoint: str | None = Field(None, validation_alias="REGIOZORG_OIDC_TOKEN_ENDPOINT")
    oidc_logout_endpoint: str | None = Field(None, validation_alias="REGIOZORG_OIDC_LOGOUT_ENDPOINT")
    # Where consoles ask whether a login session (the id_token's `sid`) still stands, for single logout; with an
    # external issuer and no such endpoint, a console session lasts until it expires or is logged out in that console.
    oidc_session_endpoint: str | None = Field(None, validation_alias="REGIOZORG_OIDC_SESSION_ENDPOINT")
    oidc_role_claim: str = Field("role", validation_alias="REGIOZORG_OIDC_ROLE_CLAIM")
    # ... and, for a partner-console user, the organisation it works for ("system|value") in this claim.
    oidc_org_claim: str = Field("org", validation_alias="REGIOZORG_OIDC_ORG_CLAIM")

    @property
    def demo(self) -> bool:
        return self.env != "production"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / f'{self.service_name}.db').as_posix()}"

    @property
    def public_urls(self) -> dict[str, str]:
        return {"triage": self.triage_public_url, "coordination": self.coordination_public_url,
                "billing_shadow": self.billing_public_url}

    @property
    def public_url(self) -> str:
        return self.public_urls[self.service_name]

    @property
    def authorization_endpoint(self) -> str:
        return self.oidc_authorization_endpoint or f"{self.triage_public_url}/oauth/authorize"

    @property
    def token_endpoint(self) -> str:
        return self.oidc_token_endpoint or f"{self.issuer}/oauth/token"

    @property
    def logout_endpoint(self) -> str:
        return self.oidc_logout_endpoint or f"{self.triage_public_url}/oauth/logout"

    @property
    def session_endpoint(self) -> str | None:
        """The built-in authorization server's login-session endpoint (`POST sid` → `{"active": bool}`), or the
        configured one; None for an external issuer without one (then sessions are not checked)."""
        if self.oidc_session_endpoint or self.oidc_token_endpoint:
            return self.oidc_session_endpoint
        return f"{self.issuer}/oauth/session"

    @property
    def resolved_jwks_url(self) -> str:
        return self.jwks_url or f"{self.issuer.rstrip('/')}/.well-known/jwks.json"

    @property
    def pseudonym_key_bytes(self) -> bytes:
        return self.pseudonym_key.encode()

    @model_validator(mode="after")
    def _refuse_demo_secrets_in_production(self) -> ServiceSettings:
        # Production must never run on a key that is printed in the README.
        if self.env == "production" and (self.pseudonym_key.lower() in PLACEHOLDER_SECRETS
                                         or len(self.pseudonym_key) < 16):
            raise ValueError("REGIOZORG_PSEUDONYM_KEY must be set to a secret of at least 16 characters in production")
        return self
