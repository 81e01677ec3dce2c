"""Settings from CLICKME_* environment variables (pydantic-settings)."""

import ipaddress
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEMO_SECRET_FILE = "secret_key"
# A production secret with fewer distinct symbols, or holding one of these words, is a placeholder.
MIN_SECRET_SYMBOLS = 12
PLACEHOLDER_WORDS = ("change", "secret", "example", "default", "password", "xxxx")


class Settings(BaseSettings):
    """Everything configurable; defaults give the embedded demo (SQLite, in-process scoring)."""

    model_config = SettingsConfigDict(env_prefix="CLICKME_", env_file=None, extra="ignore")

    environment: Literal["demo", "production"] = "demo"
    data_dir: Path = Path(".clickme")
    database_url: str | None = None
    redis_url: str | None = None
    log_format: Literal["json", "text"] | None = Field(
        default=None, description="None: json in production, text in the demo"
    )
    redis_key_prefix: str = Field(default="clickme", min_length=1, description="Redis key names")
    opentelemetry: bool = Field(
        default=False, description="FastAPI's own OpenTelemetry, to the global providers"
    )
    secret_key: str | None = None

    model: str = "efficientnet-lite0"
    scorer_backend: Literal["onnx", "torch"] = "onnx"
    scorer_device: str = "cpu"
    scorer_threads: int = Field(default=0, ge=0, description="0: as many as the CPU has")
    worker_lanes: int = Field(
        default=0, ge=0, le=64, description="batches a worker scores at once; 0: one per thread"
    )
    batch_max_size: int = Field(default=8, ge=1, le=256)
    batch_max_wait_ms: float = Field(default=0.0, ge=0, le=1000)
    scorer_timeout_ms: int = Field(default=3000, ge=10)
    round_start_max_wait_ms: int = Field(
        default=500, ge=0, description="no new round while a reveal would wait longer; 0: off"
    )
    inprocess_scoring: bool = Field(default=False, description="score here even with Redis")
    worker_claim_timeout_ms: int = Field(default=1000, ge=10, description="then take it over")
    score_queue_max: int = Field(default=2000, ge=1, description="waiting requests per model")
    image_cache_size: int = Field(default=512, ge=1)

    export_retention_days: float = Field(default=30.0, ge=0, description="0: keep forever")
    export_heartbeat_s: float = Field(default=5.0, gt=0, description="running job's beat")
    export_stale_after_s: float = Field(default=30.0, gt=0, description="silent: interrupted")

    max_points_per_batch: int = Field(default=500, ge=1)
    strokes_synchronous_commit: bool = Field(
        default=True, description="false: a batch's commit does not wait for its WAL (README)"
    )
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    round_grace_ms: int = Field(default=500, ge=0)
    round_start_bound_s: float = Field(
        default=20.0, gt=0, le=600, description="the clock starts at the latest this long after"
    )
    display_max_side: int = Field(default=1280, ge=64, le=8192, description="players' photos")
    rate_reveals_per_s: int = Field(default=20, ge=1, description="point batches, per player")
    rate_rounds_per_min: int = Field(default=60, ge=1, description="rounds started, per IP")
    rate_players_per_min: int = Field(default=30, ge=1, description="players created, per IP")

    max_upload_bytes: int = Field(default=200 * 1024 * 1024, ge=1024, description="image zips")
    upload_max_entries: int = Field(default=10_000, ge=1, description="files in an image zip")
    upload_max_unpacked_bytes: int = Field(default=1024**3, ge=1024, description="zip unpacked")
    upload_max_ratio: float = Field(default=100.0, ge=1, description="unpacked/packed, per entry")
    # Slow clients (cf. deploy/Caddyfile's read_header and idle timeouts).
    http_header_timeout_s: float = Field(default=10.0, gt=0, description="request headers")
    http_keepalive_timeout_s: int = Field(default=5, ge=1, description="idle between requests")
    http_max_connections: int = Field(default=1000, ge=1, description="per process, then 503")

    frame_ancestors: str = Field(
        default="https://www.mturk.com https://workersandbox.mturk.com",
        pattern=r"^[a-z0-9:/.*\- ]*$",
        description="origins that may show the game page in a frame (MTurk's HITs)",
    )

    import_root: Path | None = Field(default=None, description="server folders staff may import")

    forwarded_allow_ips: str | None = Field(
        default=None, description="proxies whose X-Forwarded-For/-Proto are believed; None: none"
    )
    ssl_certfile: Path | None = Field(default=None, description="`clickme serve` speaks HTTPS")
    ssl_keyfile: Path | None = Field(default=None, description="its key (unless in the certfile)")

    _secret_cache: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _refuse_insecure_production(self) -> "Settings":
        if self.environment == "production":
            if not self.secret_key or len(self.secret_key) < 32:
                raise ValueError("CLICKME_SECRET_KEY must be set (32+ characters) in production")
            if len(set(self.secret_key)) < MIN_SECRET_SYMBOLS or any(
                word in self.secret_key.lower() for word in PLACEHOLDER_WORDS
            ):
                raise ValueError(
                    "CLICKME_SECRET_KEY looks like a placeholder: generate one, e.g. "
                    "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
                )
            if not self.database_url:
                raise ValueError("CLICKME_DATABASE_URL must be set in production")
        return self

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _addresses_or_networks(cls, value: str | None) -> str | None:
        for item in (value or "").split(","):
            if item.strip() and item.strip() != "*":
                ipaddress.ip_network(item.strip(), strict=False)  # a ValueError names it
        return value

    @model_validator(mode="after")
    def _key_with_its_certificate(self) -> "Settings":
        if self.ssl_keyfile and not self.ssl_certfile:
            raise ValueError("CLICKME_SSL_KEYFILE needs CLICKME_SSL_CERTFILE")
        return self

    @model_validator(mode="after")
    def _stale_after_several_beats(self) -> "Settings":
        if self.export_stale_after_s < 3 * self.export_heartbeat_s:
            raise ValueError(
                "CLICKME_EXPORT_STALE_AFTER_S must be at least 3 x CLICKME_EXPORT_HEARTBEAT_S "
                "(a busy process would have its running exports failed)"
            )
        return self

    @property
    def resolved_database_url(self) -> str:
        """The configured URL, or a SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'clickme.db').resolve()}"

    def resolved_secret_key(self) -> str:
        """The configured secret, or (demo only) one generated once and kept in the data dir."""
        if self.secret_key:
            return self.secret_key
        if self._secret_cache is None:
            path = self.data_dir / DEMO_SECRET_FILE
            if not path.exists():
                self.data_dir.mkdir(parents=True, exist_ok=True)
                path.write_text(secrets.token_urlsafe(48))
                path.chmod(0o600)
            self._secret_cache = path.read_text().strip()
        return self._secret_cache

    @property
    def remote_scoring(self) -> bool:
        """Images are scored by `clickme worker` processes through Redis, not in this process."""
        return bool(self.redis_url) and not self.inprocess_scoring

    @property
    def resolved_log_format(self) -> Literal["json", "text"]:
        if self.log_format:
            return self.log_format
        return "json" if self.environment == "production" else "text"

    @property
    def trusted_proxies(self) -> list[str]:
        """The proxies' addresses or networks (`*`: any peer), from the comma-separated setting."""
        items = (self.forwarded_allow_ips or "").split(",")
        return [item.strip() for item in items if item.strip()]

    @property
    def images_dir(self) -> Path:
        return self.data_dir / "images"

    @property
    def prepared_dir(self) -> Path:
        """Photos prepared for revealing (crop and background), shared by the processes."""
        return self.data_dir / "prepared"

    @property
    def display_dir(self) -> Path:
        """Display versions of the photos (sized for screens), shared by the processes."""
        return self.data_dir / "display"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def uploads_dir(self) -> Path:
        """Where uploaded zips are unpacked (a temporary folder each) before the import."""
        return self.data_dir / "uploads"


@lru_cache
def get_settings() -> Settings:
    return Settings()
