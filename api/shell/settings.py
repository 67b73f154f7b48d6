"""Settings: one struct, read from the environment once, by whoever starts the app."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def _default_data_dir() -> str:
    import platformdirs

    return platformdirs.user_data_dir("ontime")


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    # None: start (or join) the embedded PostgreSQL under data_dir.
    database_url: str | None = None
    data_dir: str = msgspec.field(default_factory=_default_data_dir)
    migrations_dir: str = str(MIGRATIONS_DIR)
    bootstrap_admin_key: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    pool_min_size: int = 2
    pool_max_size: int = 10
    max_body_bytes: int = 1024 * 1024
    # How long a verified API key is served from the per-process cache. Only
    # while the revocation listener is connected; revocations evict at once.
    key_cache_seconds: float = 30.0
    # live feed: a connection whose oldest waiting change has waited this long
    # is closed with 4008 (and never more than live_max_outbox may wait); how
    # often the hub reads the log with no wake-up at all
    live_max_lag_seconds: float = 5.0
    live_max_outbox: int = 10_000
    # lateness: a shipment with no event for this long is stale; the deadline
    # sweep looks for broken promises this often
    stale_after_hours: float = 48.0
    deadline_poll_seconds: float = 0.5
    live_poll_seconds: float = 1.0
    # a file where the live hub writes, when it stops, when each change passed
    # each of its stages (bench.live's latency parts); empty: not traced
    live_trace: str = ""
    # inbound carrier payloads: the largest body taken, and how long each is kept
    inbound_max_body_bytes: int = 4 * 1024 * 1024
    inbound_retention_days: float = 30.0
    # where people reach this service, for the links it hands out (a recipient's
    # feedback link); empty means http://HOST:PORT, right only on that machine
    public_url: str = ""
    # the keyless feedback endpoints: requests a minute per client address and per link
    feedback_per_address_per_minute: int = 30
    feedback_per_link_per_minute: int = 10
    # webhooks: http and private addresses allowed (development and tests only);
    # a failed delivery is tried again after webhook_first_retry_seconds, doubling
    # (at most an hour), until it has failed for webhook_retry_hours: then the
    # endpoint is disabled
    webhook_allow_private: bool = False
    webhook_first_retry_seconds: float = 10.0
    webhook_retry_hours: float = 24.0
    webhook_timeout_seconds: float = 10.0
    webhook_concurrency: int = 32
    webhook_poll_seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.public_url and not self.public_url.startswith(("http://", "https://")):
            raise ValueError("ONTIME_PUBLIC_URL must start with https:// (or http://), e.g. https://track.example.com")

    @property
    def link_base(self) -> str:
        """The start of every link the service hands out, without a trailing slash."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        names = {
            "database_url": "DATABASE_URL",
            "data_dir": "ONTIME_DATA_DIR",
            "migrations_dir": "ONTIME_MIGRATIONS_DIR",
            "bootstrap_admin_key": "ONTIME_BOOTSTRAP_ADMIN_KEY",
            "host": "ONTIME_HOST",
            "port": "ONTIME_PORT",
            "pool_min_size": "ONTIME_POOL_MIN_SIZE",
            "pool_max_size": "ONTIME_POOL_MAX_SIZE",
            "max_body_bytes": "ONTIME_MAX_BODY_BYTES",
            "key_cache_seconds": "ONTIME_KEY_CACHE_SECONDS",
            "live_max_outbox": "ONTIME_LIVE_MAX_OUTBOX",
            "live_max_lag_seconds": "ONTIME_LIVE_MAX_LAG_SECONDS",
            "stale_after_hours": "ONTIME_STALE_AFTER_HOURS",
            "deadline_poll_seconds": "ONTIME_DEADLINE_POLL_SECONDS",
            "live_poll_seconds": "ONTIME_LIVE_POLL_SECONDS",
            "live_trace": "ONTIME_LIVE_TRACE",
            "inbound_max_body_bytes": "ONTIME_INBOUND_MAX_BODY_BYTES",
            "inbound_retention_days": "ONTIME_INBOUND_RETENTION_DAYS",
            "public_url": "ONTIME_PUBLIC_URL",
            "feedback_per_address_per_minute": "ONTIME_FEEDBACK_PER_ADDRESS_PER_MINUTE",
            "feedback_per_link_per_minute": "ONTIME_FEEDBACK_PER_LINK_PER_MINUTE",
            "webhook_allow_private": "ONTIME_WEBHOOK_ALLOW_PRIVATE",
            "webhook_first_retry_seconds": "ONTIME_WEBHOOK_FIRST_RETRY_SECONDS",
            "webhook_retry_hours": "ONTIME_WEBHOOK_RETRY_HOURS",
            "webhook_timeout_seconds": "ONTIME_WEBHOOK_TIMEOUT_SECONDS",
            "webhook_concurrency": "ONTIME_WEBHOOK_CONCURRENCY",
            "webhook_poll_seconds": "ONTIME_WEBHOOK_POLL_SECONDS",
        }
        for field, var in names.items():
            raw = env.get(var)
            if raw:
                values[field] = raw
        try:
            return msgspec.convert(values, cls, strict=False)
        except msgspec.ValidationError as exc:
            raise SystemExit(f"ontime: bad configuration: {exc}") from None
