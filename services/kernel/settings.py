"""The one settings object of Los: every knob, read from the environment (and `.env`).

`NATS_URL` and `DATABASE_URL` name external servers; without them the platform starts
embedded ones (see `embedded.py`). Everything else is prefixed `LOS_`, nested with `__`,
for example `LOS_RULES__HANDOVER_GAP=P14D`. Durations are ISO 8601 (`P14D`, `PT3S`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, BaseModel, Field, SecretStr, TypeAdapter, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class RuleSettings(BaseModel):
    """Thresholds of the rules of CONTRACT §2 and §4; defaults are the contract's, or our
    reading of it (docs/contract-readings.md)."""

    # An end or extension waits for its start; taken if the start was recorded at most
    # this long after it (§2: "held for a while").
    lifecycle_hold: timedelta = timedelta(days=7)
    no_start_after_triage: timedelta = timedelta(days=30)
    handover_gap: timedelta = timedelta(days=14)
    handover_gap_unplanned: timedelta = timedelta(days=7)
    no_coordinator: timedelta = timedelta(days=7)
    six_month_check_due: timedelta = timedelta(days=182)
    six_month_check_grace: timedelta = timedelta(days=14)
    early_job_exit: timedelta = timedelta(days=182)
    churn_window: timedelta = timedelta(days=365)
    churn_short_measure: timedelta = timedelta(days=90)
    churn_count: int = 3
    stale_measure: timedelta = timedelta(days=30)


class TlsSettings(BaseModel):
    """gRPC over TLS, files in PEM. A server with `cert` and `key` speaks only TLS; with
    `client_ca` too, it takes only clients that show a certificate that CA signed (mutual
    TLS: source systems and coordinators' clients known by their certificates). A client
    (the `los` commands) with `ca` connects over TLS and trusts the servers that CA signed,
    showing `client_cert` and `client_key` if it has them; `server_name` is the name it
    checks the servers' certificate for when it reaches them by another (a health check
    on 127.0.0.1). Nothing set: plaintext, as `los up` on 127.0.0.1 runs."""

    cert: Path | None = None
    key: Path | None = None
    client_ca: Path | None = None
    ca: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    server_name: str | None = None

    @model_validator(mode="after")
    def _in_pairs(self) -> TlsSettings:
        for first, second in (("cert", "key"), ("client_cert", "client_key")):
            if (getattr(self, first) is None) != (getattr(self, second) is None):
                raise ValueError(f"tls.{first} and tls.{second} go together: set both or neither")
        if self.client_ca is not None and self.cert is None:
            raise ValueError("tls.client_ca needs tls.cert and tls.key: a server without TLS")
        for client_side in ("client_cert", "server_name"):
            if getattr(self, client_side) is not None and self.ca is None:
                raise ValueError(f"tls.{client_side} needs tls.ca: a client without TLS")
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LOS_", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    nats_url: str | None = Field(
        default=None, validation_alias=AliasChoices("NATS_URL", "LOS_NATS_URL")
    )
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "LOS_DATABASE_URL")
    )
    data_dir: Path = Path(".los")

    # Pseudonymisation and the intake vault. The defaults are for synthetic data only.
    pseudonym_key: SecretStr = SecretStr("los-development-pseudonym-key")
    # Fernet keys, comma-separated while the vault is rotated (`los vault rotate`).
    vault_key: SecretStr = SecretStr("bG9zLWRldmVsb3BtZW50LXZhdWx0LWtleS0zMmJ5dGU=")
    # Signs and checks the bearer tokens of the Alerts API (HS256; `los token --coordinator`).
    token_key: SecretStr = SecretStr("los-development-token-key-not-for-production")
    # The same for source systems' tokens for the Sources API (`los token --source`): a
    # key of its own, so that no source service holds the key to coordinators' tokens.
    source_token_key: SecretStr = SecretStr("los-development-source-token-key-not-for-production")
    # The longest a token of either API may be valid for (its `exp` less its `iat`): one
    # that leaks is of use for at most this long, however its issuer set it.
    token_max_lifetime: timedelta = timedelta(hours=24)
    # The most people one coordinator should follow (DESIGN.md, the U30 model): caseloads
    # are reported against it (GetCaseload), not enforced (docs/contract-readings.md).
    caseload_cap: int = 25

    # The bus.
    stream: str = "LOS_EVENTS"
    stream_replicas: int = 1  # production: 3 on a 3-node cluster (deploy/nats/stream.json)
    subject_prefix: str = "los.v1"
    partitions: int = 16  # fixed for the life of a stream
    # Outcomes instances sharing the partitions (services/outcomes/owner.py): this one is
    # number `outcomes_instance` (from 0) of `outcomes_instances`.
    outcomes_instances: int = 1
    outcomes_instance: int = 0
    dead_letter_subject: str = "los.v1.dead"
    ingest_attempts: int = 5  # a failing batch is retried in place, then dead-lettered
    ack_wait: timedelta = timedelta(seconds=30)
    batch_size: int = 500
    duplicate_window: timedelta = timedelta(minutes=10)

    # Ports of the gRPC servers (0 picks a free one; `los up` chooses and passes them on).
    host: str = "127.0.0.1"
    tls: TlsSettings = TlsSettings()  # LOS_TLS__CERT, LOS_TLS__KEY, ...
    intake_port: int = 50061
    journey_port: int = 50062
    employer_port: int = 50063
    outcomes_port: int = 50064

    # The live clock (CONTRACT §3): a source service counts as caught up to the wall clock
    # (less `transit_allowance`) once nothing is pending and it sent nothing for `quiet_period`.
    transit_allowance: timedelta = timedelta(milliseconds=500)
    # Sooner than that: each source's outbox announces, every `announce_interval`, up to
    # which moment it has published what it received, and outcomes counts a live service
    # as caught up to that moment less `edge_allowance` (source system → Los service).
    announce_interval: timedelta = timedelta(milliseconds=50)
    edge_allowance: timedelta = timedelta(milliseconds=100)
    quiet_period: timedelta = timedelta(seconds=2)
    max_future_recorded_at: timedelta = timedelta(minutes=5)
    # While outcomes works through a backlog it judges at most this often, so someone with
    # facts in many batches is judged once rather than once a batch; live, at once.
    catch_up_judging: timedelta = timedelta(seconds=1)

    # Records (journeys) each service keeps in memory; its memory stops growing once it
    # holds this many (outcomes: ~4 kB of RSS a journey of 2 facts, ~6 kB one of 9;
    # bench/findings.md items 9 and 27). One missing from the cache costs
    # a share of one read per batch, since a batch loads everyone it names at once.
    aggregate_cache_size: int = 50_000
    rules: RuleSettings = RuleSettings()

    # Telemetry: "none", "console" or "otlp" (OTEL_EXPORTER_OTLP_ENDPOINT then applies).
    telemetry: str = "none"

    @model_validator(mode="after")
    def _token_keys(self) -> Settings:
        """HS256 keys of at least 256 bits (RFC 7518, 3.2), and one for each API."""
        for name in ("token_key", "source_token_key"):
            if len(getattr(self, name).get_secret_value().encode()) < 32:
                setting = f"LOS_{name.upper()}"
                raise ValueError(f"{setting} must be at least 32 bytes (openssl rand -hex 32)")
        if self.token_key.get_secret_value() == self.source_token_key.get_secret_value():
            raise ValueError(
                "LOS_TOKEN_KEY and LOS_SOURCE_TOKEN_KEY must differ: whoever holds the one may"
                " not sign tokens for the other's API"
            )
        if self.token_max_lifetime <= timedelta(0):
            raise ValueError("LOS_TOKEN_MAX_LIFETIME must be longer than nothing")
        return self

    @model_validator(mode="after")
    def _instances(self) -> Settings:
        """Every instance owns at least one partition, and the number of each is in range."""
        if not 1 <= self.outcomes_instances <= self.partitions:
            raise ValueError(
                f"LOS_OUTCOMES_INSTANCES must be from 1 to LOS_PARTITIONS ({self.partitions})"
            )
        if not 0 <= self.outcomes_instance < self.outcomes_instances:
            raise ValueError(
                "LOS_OUTCOMES_INSTANCE must be from 0 to LOS_OUTCOMES_INSTANCES - 1"
                f" ({self.outcomes_instances - 1})"
            )
        return self

    def public_defaults(self, keys: Iterable[str]) -> list[str]:
        """Which of these keys are still at their defaults, which are in the public source
        (or hold them among others, as a vault key being rotated does)."""
        return [
            key
            for key in keys
            if type(self).model_fields[key].default.get_secret_value()
            in (part.strip() for part in getattr(self, key).get_secret_value().split(","))
        ]


_DURATION = TypeAdapter(timedelta)


def iso_duration(duration: timedelta) -> str:
    """`duration` in ISO 8601, the way settings are written (`P7D`, `PT24H`)."""
    return str(_DURATION.dump_python(duration, mode="json"))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
