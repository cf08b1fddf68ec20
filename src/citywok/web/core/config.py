"""Settings of the web service: declared once, each with a default and a line of help.

Only the outermost shell (``citywok serve``, :func:`citywok.web.app.create_app_from_env`)
reads the environment (variables prefixed ``CITYWOK_``); everything else receives a
:class:`Settings` value.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated

from limits import parse
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from citywok.defaults import (
    DEFAULT_DATA_TEXT,
    DEFAULT_INDEX_TEXT,
    MAX_CLIP_DURATION_S,
    default_data_dir,
    default_index_dir,
)
from citywok.errors import ConfigError
from citywok.links.fetch import DownloadLimits, LinkPolicy

#: The anonymous limit of a service that others can reach, unless one is set.
PUBLIC_ANONYMOUS_LIMIT = "10/hour"
#: The versioned API's path prefix: every route but health and the page lives under it,
#: and links the service writes (media, previews) start with it.
API_PREFIX = "/api/v1"

#: Hosts links may point to (a host matches itself and its subdomains).
DEFAULT_PLATFORMS = (
    "tiktok.com", "youtube.com", "youtu.be", "instagram.com", "x.com", "twitter.com",
    "reddit.com", "redd.it",
)


def _split(value: object) -> object:
    """Accept ``a,b,c`` from the environment as well as a JSON list."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import json
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Everything the web service can be told; see ``docs/web.md``."""

    model_config = SettingsConfigDict(env_prefix="CITYWOK_", extra="forbid",
                                      validate_default=True)

    # -- index and storage --------------------------------------------------------------
    index: Path = Field(default_factory=default_index_dir, description="Index directory the "
                        "service answers from (opened read-only and memory-mapped; shared by "
                        "all workers); the same default as 'citywok index'.")
    data_dir: Path = Field(
        default_factory=default_data_dir, description="Where the service keeps its own "
        "state: API keys and usage figures (keys.sqlite), shared answers (shares.sqlite). "
        "Never inside the index, which a snapshot pull replaces; such files found at their "
        "old places (in or beside the index) are copied here once.")
    keys_db: Path | None = Field(
        default=None, description="SQLite file holding the hashed API keys and usage "
        "figures when no CITYWOK_DATABASE_URL is set [default: keys.sqlite in "
        "CITYWOK_DATA_DIR].")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the database of API keys and usage "
        "figures, e.g. postgresql+psycopg://user:pass@host/citywok for replicas that share "
        "it [default: the SQLite file CITYWOK_KEYS_DB].")
    temp_dir: Path | None = Field(default=None, description="Where uploads and downloads are kept "
                                  "while they are identified [default: the system temp dir].")
    index_check_interval_s: float = Field(
        default=2.0, ge=0, description="How often a worker checks "
                                          "whether the index changed on disk and reloads it.")
    library_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list, description="Folders the admin 'index' endpoint may read; "
        "empty disables indexing over HTTP.")

    snapshot_url: str | None = Field(
        default=None, description="s3://bucket/prefix of index snapshots: 'citywok serve' "
        "pulls the current one at start and then polls for a newer one (the index path "
        "becomes a symlink to the verified version).")
    snapshot_poll_interval_s: float = Field(
        default=60.0, ge=0, description="How often 'citywok serve' checks for a newer "
        "snapshot; 0 pulls only at start.")
    s3_endpoint_url: str | None = Field(
        default=None, description="S3 API endpoint for snapshots (R2, MinIO) [default: "
        "$AWS_ENDPOINT_URL, else AWS].")
    s3_region: str | None = Field(default=None, description="Region of the snapshot bucket "
                                  "('auto' for R2) [default: $AWS_REGION].")
    s3_access_key_id: str | None = Field(
        default=None, description="Access key id for snapshots [default: "
        "$AWS_ACCESS_KEY_ID or boto3's other sources].")
    s3_secret_access_key: SecretStr | None = Field(
        default=None, description="Secret access key for snapshots [default: "
        "$AWS_SECRET_ACCESS_KEY or boto3's other sources].")

    # -- server ---------------------------------------------------------------------------
    host: str = Field(default="127.0.0.1", description="Address 'citywok serve' listens on.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port 'citywok serve' listens on.")
    workers: int = Field(default=1, ge=1, description="Worker processes of 'citywok serve'; they "
                         "share the index and (with a Redis URL) the rate-limit store.")
    max_concurrent_jobs: int = Field(default=2, ge=1, description="Identifications one worker runs "
                                     "at once; more wait their turn.")
    max_queue_wait_s: float = Field(
        default=15.0, gt=0, description="Longest wait an identification may expect for its "
        "turn (the work queued ahead of it, at the recent time per identification); past "
        "it new ones are refused at once with 503 and Retry-After.")
    job_time_guess_s: float = Field(
        default=1.0, gt=0, description="Time per identification assumed until some have "
        "run (the queue's wait is measured from then on).")
    log_level: str = Field(default="info", description="Log level of the JSON logs.")
    sentry_dsn: str | None = Field(
        default=None, description="Sentry DSN; errors are reported there "
                                   "when set (off by default).")
    sentry_traces_sample_rate: float = Field(
        default=0.0, ge=0, le=1, description="Share of requests "
                                             "traced in Sentry.")

    # -- identification -------------------------------------------------------------------
    max_upload_bytes: int = Field(default=50_000_000, ge=1, description="Largest upload accepted; "
                                  "enforced while the body streams in.")
    max_clip_duration_s: float = Field(default=MAX_CLIP_DURATION_S, gt=0, description="Longest "
                                       "clip (upload or download) that is decoded.")
    decode_timeout_s: float = Field(
        default=60.0, gt=0, description="Longest time decoding one clip "
                                    "may take.")
    sse_heartbeat_s: float = Field(
        default=5.0, gt=0, description="Interval of 'heartbeat' events while "
                                   "a stage of a streamed identification runs.")

    # -- answers: share pages, previews, listening --------------------------------------
    public_url: str | None = Field(
        default=None, description="The address people reach this service at (e.g. "
        "https://citywok.example), for share links and preview links [default: the address "
        "of each request].")
    shares_db: Path | None = Field(
        default=None, description="SQLite file holding shared answers (the answer only, "
        "never the clip) [default: shares.sqlite in CITYWOK_DATA_DIR].")
    share_ttl_days: float = Field(
        default=30.0, ge=0, description="How long a shared answer (/r/<id>) stays "
        "readable; 0 turns share links off.")
    preview_cache_dir: Path | None = Field(
        default=None, description="Where stills and preview clips cut from the library are "
        "cached [default: the per-user cache dir].")
    preview_cache_max_bytes: int = Field(
        default=500_000_000, ge=0, description="Largest size of the preview cache; the "
        "least recently used files go first.")
    preview_max_clip_s: float = Field(
        default=6.0, gt=0, le=30, description="Longest preview clip of a matched scene.")
    serve_sources: bool = Field(
        default=False, description="Let answers link to the library's own files (with a "
        "#t= media fragment) when a show has no watch URL; for a service on your own "
        "machine, never a public one.")
    listen_max_s: float = Field(
        default=15.0, gt=0, le=120, description="Longest a listening session may stream "
        "before it answers 'not found'.")
    listen_check_interval_s: float = Field(
        default=1.0, gt=0, description="How often a listening session matches what it has "
        "heard so far.")
    listen_conclusive_confidence: float = Field(
        default=0.9, gt=0, le=1, description="Confidence at which a listening session "
        "answers at once.")
    listen_follow_max_s: float = Field(
        default=1800.0, gt=0, le=86_400, description="Longest a listening session may go "
        "on following the episode after its answer (the page's Listen does, until "
        "stopped); CITYWOK_LISTEN_MAX_S bounds only the identification before it.")
    listen_max_sessions: int = Field(
        default=8, ge=1, description="Listening sessions one worker holds open at once "
        "(each keeps an ffmpeg decoder while it listens and follows); past it, a new "
        "session is refused with 503 'busy'. Their matches share "
        "CITYWOK_MAX_CONCURRENT_JOBS with every other identification.")
    listen_follow_max_sessions: int = Field(
        default=8, ge=0, description="Following sessions one worker holds at once (each "
        "keeps an ffmpeg decoder and a tracker for up to CITYWOK_LISTEN_FOLLOW_MAX_S); past "
        "it, a session asking to follow gets its answer without following. 0 turns "
        "following off.")
    listen_follow_idle_s: float = Field(
        default=300.0, gt=0, description="A following session ends after this long with "
        "no place followed: a long pause, the sound turned off, or no sound arriving.")
    ssl_certfile: Path | None = Field(
        default=None, description="TLS certificate (PEM) for 'citywok serve' to speak "
        "HTTPS itself; browsers allow the microphone only over HTTPS or on localhost.")
    ssl_keyfile: Path | None = Field(
        default=None, description="TLS private key (PEM) that goes with CITYWOK_SSL_CERTFILE.")

    # -- timelines (POST /api/v1/timeline) -----------------------------------------------
    timeline_max_upload_bytes: int = Field(
        default=500_000_000, ge=1, description="Largest upload (or download, for a link) "
        "accepted for a timeline; enforced while it streams in.")
    timeline_max_duration_s: float = Field(
        default=10_800.0, gt=0, description="Longest input a timeline is made of (checked "
        "before decoding starts, and again while it decodes).")
    timeline_timeout_s: float = Field(
        default=1_800.0, gt=0, description="Longest time a timeline's download, and its "
        "decoding and matching, may each take.")

    # -- links ----------------------------------------------------------------------------
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_PLATFORMS),
        description="Hosts links may point to; a name matches itself and its subdomains "
        "(matched on the parsed host, never as a prefix).")
    allowed_ports: Annotated[list[int], NoDecode] = Field(
        default_factory=list, description="Ports allowed in links besides 80 (http) and "
        "443 (https).")
    download_max_bytes: int = Field(default=100_000_000, ge=1, description="Largest download "
                                    "accepted; the download stops when it is passed.")
    download_max_duration_s: float = Field(default=3600.0, gt=0, description="Longest media a link "
                                           "may point to (when the site says how long).")
    download_timeout_s: float = Field(
        default=120.0, gt=0, description="Longest time a download may "
                                      "take; the downloader process is killed then.")
    fetch_allow_loopback: bool = Field(default=False, description="FOR TESTS ONLY: let links reach "
                                       "loopback addresses (127.0.0.0/8, ::1).")

    # -- keys and limits --------------------------------------------------------------------
    anonymous_rate_limit: str | None = Field(
        default=None, description="Identifications and timelines allowed per client IP "
        "without a key ('limits' notation) [default: none while 'serve' listens on loopback "
        "(127.0.0.1, ::1, localhost) with no trusted proxies, a person's own machine; "
        f"{PUBLIC_ANONYMOUS_LIMIT} on any other address].")
    key_rate_limit: str = Field(
        default="100/hour", description="Identifications allowed per API key "
                                "unless the key has its own limit.")
    refused_rate_limit: str = Field(
        default="60/hour", description="Refused or malformed identification requests "
        "(a link not allowed, a bad body) allowed per client IP or key; they are counted "
        "here, not against the identification limits.")
    auth_failure_rate_limit: str = Field(
        default="20/hour", description="Wrong API keys allowed per client IP; past it, every "
        "request with a key from that address is refused (429) until the window moves.")
    auth_failure_delay_s: float = Field(
        default=1.0, ge=0, le=30, description="Wait before answering a wrong API key, times "
        "the wrong keys that address sent in the window (at most 10 times).")
    rate_limit_storage: str = Field(
        default="memory://", description="Where rate-limit counters live: "
                                    "memory:// (one process) or redis://host:port/db (shared).")
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Addresses or networks of reverse proxies whose "
        "X-Forwarded-For is believed; empty means the socket address is the client.")

    # -- request hygiene ------------------------------------------------------------------
    request_header_timeout_s: float = Field(
        default=10.0, gt=0, description="Longest a connection may take to send a request's "
        "headers, from connecting or from the previous response; slow or idle connections "
        "are closed then.")
    max_url_length: int = Field(default=2048, ge=64, description="Longest request target (path and "
                                "query) accepted.")
    max_header_bytes: int = Field(
        default=16384, ge=1024, description="Largest total size of request "
                                  "headers accepted.")
    max_body_bytes: int = Field(default=65536, ge=1024, description="Largest body accepted for "
                                "anything but an upload (JSON, forms).")
    max_json_depth: int = Field(
        default=8, ge=2, description="Deepest nesting of JSON bodies accepted.")
    max_link_length: int = Field(default=2048, ge=32, description="Longest link accepted for "
                                 "identification.")

    # -- browser --------------------------------------------------------------------------
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Origins allowed to call the API from a browser.")
    cors_allow_credentials: bool = Field(default=False, description="Let browsers send cookies and "
                                         "credentials cross-origin (never with '*').")
    hsts_max_age_s: int = Field(default=31_536_000, ge=0, description="max-age of the "
                                "Strict-Transport-Security header.")

    def link_policy(self) -> LinkPolicy:
        """What links may point to, as the fetcher takes it."""
        return LinkPolicy(allowed_hosts=tuple(self.allowed_hosts),
                          allowed_ports=tuple(self.allowed_ports),
                          allow_loopback=self.fetch_allow_loopback,
                          max_link_length=self.max_link_length)

    def download_limits(self) -> DownloadLimits:
        return DownloadLimits(max_bytes=self.download_max_bytes,
                              max_duration_s=self.download_max_duration_s,
                              timeout_s=self.download_timeout_s)

    def timeline_download_limits(self) -> DownloadLimits:
        """What a link may bring for a timeline: long inputs are its point."""
        return DownloadLimits(max_bytes=self.timeline_max_upload_bytes,
                              max_duration_s=self.timeline_max_duration_s,
                              timeout_s=self.timeline_timeout_s)

    @field_validator("index", mode="before")
    @classmethod
    def _index(cls, value: object) -> object:
        # CITYWOK_INDEX= (empty) means "not set", as for the CLI, never the current folder.
        if value is None or (isinstance(value, str) and not value.strip()):
            return default_index_dir()
        return value

    @field_validator("data_dir", mode="before")
    @classmethod
    def _data_dir(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return default_data_dir()
        return value

    @field_validator("library_roots", "allowed_hosts", "allowed_ports", "trusted_proxies",
                     "cors_origins", mode="before")
    @classmethod
    def _lists(cls, value: object) -> object:
        return _split(value)

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        return [h.strip().lower().rstrip(".") for h in value if h.strip()]

    @field_validator("anonymous_rate_limit", mode="before")
    @classmethod
    def _unset(cls, value: object) -> object:
        # CITYWOK_ANONYMOUS_RATE_LIMIT= (empty) means "not set": the default for the address.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("anonymous_rate_limit", "key_rate_limit", "refused_rate_limit",
                     "auth_failure_rate_limit")
    @classmethod
    def _limit(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            parse(value)
        except ValueError:
            raise ValueError(f"not a rate limit: {value!r} (e.g. '10/hour')") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.cors_allow_credentials and "*" in self.cors_origins:
            raise ValueError("cors_origins '*' cannot be combined with credentials")
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError("ssl_certfile and ssl_keyfile go together")
        if self.public_url is not None and not re.match(r"^https?://[^/\s]+/?$",
                                                        self.public_url):
            raise ValueError("public_url must be like https://citywok.example")
        if self.data_dir.expanduser().resolve().is_relative_to(
                self.index.expanduser().resolve()):
            raise ValueError("data_dir must not be inside the index (a snapshot pull "
                             "replaces the index folder whole)")
        scheme = self.rate_limit_storage.split("://", 1)[0]
        if scheme not in ("memory", "redis", "rediss", "redis+unix"):
            raise ValueError("rate_limit_storage must be memory:// or a redis:// URL")
        return self

    @property
    def on_loopback(self) -> bool:
        """Whether only this machine can reach the service (no proxy forwards others)."""
        if self.trusted_proxies:
            return False
        if self.host.strip("[]").lower() == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host.strip("[]")).is_loopback
        except ValueError:
            return False  # a host name: it may resolve to anything

    @property
    def anonymous_limit(self) -> str | None:
        """The anonymous limit in force: the one set, else none on loopback (nobody but the
        machine's own user can be anonymous there), else :data:`PUBLIC_ANONYMOUS_LIMIT`."""
        if self.anonymous_rate_limit is not None:
            return self.anonymous_rate_limit
        return None if self.on_loopback else PUBLIC_ANONYMOUS_LIMIT

    @property
    def keys_path(self) -> Path:
        return self.keys_db if self.keys_db is not None else self.data_dir / "keys.sqlite"

    @property
    def database(self) -> str:
        """The database URL in force (the SQLite key file unless a URL is set)."""
        return self.database_url or f"sqlite:///{self.keys_path}"

    @property
    def shares_path(self) -> Path:
        return self.shares_db if self.shares_db is not None else self.data_dir / "shares.sqlite"

    @property
    def preview_cache_path(self) -> Path:
        if self.preview_cache_dir is not None:
            return self.preview_cache_dir
        from platformdirs import user_cache_path

        return user_cache_path("citywok") / "previews"


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment (and ``overrides``); invalid ones are a ConfigError."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}"
                             for e in exc.errors())
        raise ConfigError(f"invalid settings: {problems}") from None


def settings_reference() -> str:
    """The Markdown table of every setting (docs/web.md holds it; a test compares)."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, f in Settings.model_fields.items():
        default = f.default_factory() if f.default_factory is not None else f.default  # type: ignore[call-arg]
        shown = ",".join(str(v) for v in default) if isinstance(default, list) else default
        if f.default_factory is default_index_dir:  # differs per user and OS
            shown = DEFAULT_INDEX_TEXT
        if f.default_factory is default_data_dir:
            shown = DEFAULT_DATA_TEXT
        rows.append(f"| `CITYWOK_{name.upper()}` | `{shown}` | {f.description} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(settings_reference(), end="")
