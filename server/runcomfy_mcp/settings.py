"""Settings, read once from the environment (RUNCOMFY_*) and overridden by CLI flags."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import platformdirs
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from runcomfy_mcp.domain.spending import SpendLimits
from runcomfy_mcp.store.dsn import dsn_secrets
from runcomfy_mcp.upstream.retries import RetryPolicy

DEFAULT_BASE_URL = "https://model-api.runcomfy.net"
SANDBOX_FOLDER = "sandbox"  # inside the data and spec folders: the sandbox's own, which a real server never reads
DEFAULT_ACCOUNT_URL = "https://api.runcomfy.net"
MIN_CONSENT_KEY_CHARS = 32


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("runcomfy-mcp", appauthor=False))


def default_specs_dir() -> Path:
    return Path(platformdirs.user_config_dir("runcomfy-mcp", appauthor=False)) / "tool_specs"


def default_output_dir() -> Path:
    return Path(platformdirs.user_downloads_dir()) / "runcomfy"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RUNCOMFY_", extra="ignore", allow_inf_nan=False)

    api_token: SecretStr | None = Field(default=None, description="RunComfy API token (Profile → API keys).")
    base_url: str = Field(default=DEFAULT_BASE_URL, description="Model API base URL.")
    account_url: str | None = Field(
        default=None,
        description="Account API base URL (the balance); default: RunComfy's, or the Model API's own URL when that "
        "was changed (a proxy or the sandbox serves both).",
    )
    tool_specs_dir: Path | None = Field(
        default=None,
        description="Folder of your own tool spec files (`models add` writes there); default: a tool_specs folder "
        "in the user's config folder, read when it exists.",
    )
    models: str | None = Field(
        default=None, description="Catalog model ids (comma-separated) that become tools of their own."
    )
    catalog_ttl_s: float = Field(default=86400.0, ge=0, description="How long the cached model catalog is fresh.")
    request_timeout_s: float = Field(default=30.0, gt=0, description="Read timeout for one API request.")
    connect_timeout_s: float = Field(default=10.0, gt=0, description="Connect timeout for one API request.")
    retry_attempts: int = Field(default=4, ge=1, le=10, description="Tries for status/result/cancel/download.")
    retry_wait_initial_s: float = Field(default=0.5, ge=0, description="First backoff between tries.")
    retry_wait_max_s: float = Field(default=8.0, ge=0, description="Longest backoff between tries.")
    retry_after_max_s: float = Field(default=30.0, ge=0, description="Longest Retry-After this server will honour.")
    input_roots: str | None = Field(
        default=None,
        description="Folders local image files may come from, separated by the OS path separator "
        "(default: the user's home in stdio mode; HTTP mode never reads local files).",
    )
    database_url: SecretStr | None = Field(
        default=None,
        description="postgresql://… : keep the history (and spending ledger) in PostgreSQL, shared by replicas.",
    )
    data_dir: Path = Field(default_factory=default_data_dir, description="Where the job history (SQLite) lives.")
    output_dir: Path = Field(default_factory=default_output_dir, description="Where downloaded videos are saved.")
    fetch_timeout_s: float = Field(
        default=30.0, gt=0, description="Total time one image URL may take to probe or fetch, first byte to last."
    )
    max_fetches_per_caller: int = Field(default=4, ge=1, description="Image fetches one caller may have in flight.")
    max_fetches: int = Field(default=128, ge=1, description="Image fetches in flight for all callers together.")
    download_timeout_s: float = Field(default=600.0, gt=0, description="Total time one output download may take.")
    max_download_mb: float = Field(default=2048.0, gt=0, description="Largest output file a download saves (MiB).")
    output_hosts: str = Field(
        default="*.runcomfy.net,*.runcomfy.com",  # both, as RunComfy's own CLI trusts
        description="HTTP mode: hosts output files may be downloaded from, comma-separated (the API's host always).",
    )
    player_domains: str = Field(
        default="",
        description="More origins the in-chat player may load outputs from, comma-separated (the output hosts, and "
        "the API's own origin when it serves files, always).",
    )
    previews: bool = Field(default=True, description="Show what a job made: a contact sheet of frames, or the image.")
    preview_max_mb: float = Field(
        default=200.0, gt=0, description="Largest output fetched (streamed to a temporary file) for a preview (MiB)."
    )
    film_resource_max_mb: float = Field(
        default=50.0,
        gt=0,
        description="Largest film a runcomfy://films/ resource read returns (MiB; base64 in one message).",
    )
    poll_initial_s: float = Field(default=1.0, gt=0, description="First wait_for_result poll interval.")
    poll_max_s: float = Field(default=10.0, gt=0, description="Longest wait_for_result poll interval.")
    max_job_usd: float | None = Field(default=None, ge=0, description="Refuse a job whose estimate is above this.")
    budget_usd: float | None = Field(
        default=None, ge=0, description="Spending allowed per window: finished jobs' costs plus unfinished estimates."
    )
    budget_window_h: float = Field(default=24.0, gt=0, description="The budget's window, in hours.")
    max_jobs_per_hour: int | None = Field(default=None, ge=0, description="Submissions allowed per rolling hour.")
    max_active_jobs: int | None = Field(default=None, ge=0, description="Unfinished jobs allowed at once.")
    allow_unpriced: bool = Field(
        default=False, description="With RUNCOMFY_MAX_JOB_USD or a budget set, still run jobs of unknown cost."
    )
    confirm_above_usd: float | None = Field(
        default=None, ge=0, description="Ask the person (elicitation) before a job estimated above this."
    )
    auth: Literal["runcomfy-token", "oauth"] = Field(
        default="runcomfy-token",
        description="HTTP mode: 'oauth' makes the server an OAuth 2.1 protected resource with its own authorization "
        "server (people connect once on a consent page); 'runcomfy-token' takes each caller's RunComfy token as the "
        "bearer credential and forwards it (trusted setups and loopback development only).",
    )
    public_url: str | None = Field(
        default=None,
        description="With oauth: the server's external origin (https://host[:port]), its issuer and resource "
        "identifier; default http://127.0.0.1:PORT when bound to loopback.",
    )
    oauth_key: SecretStr | None = Field(
        default=None,
        description="With oauth: the Fernet key that seals people's RunComfy tokens at rest (`runcomfy-mcp "
        "oauth-key` makes one); several, comma-separated, to rotate (the first seals, all open). Every replica "
        "needs the same.",
    )
    http_max_body_mb: float = Field(
        default=70.0,
        gt=0,
        description="HTTP mode: the largest request body (MiB); 70 leaves room around the 64 MiB a RunComfy request "
        "may carry inline.",
    )
    http_max_connections: int = Field(default=1000, ge=1, description="HTTP mode: open connections, all clients.")
    http_connections_per_address: int = Field(
        default=64, ge=1, description="HTTP mode: open connections from one address (trusted proxies excepted)."
    )
    http_header_timeout_s: float = Field(
        default=10.0, gt=0, description="HTTP mode: time a client has to send a request's headers."
    )
    http_body_timeout_s: float = Field(
        default=120.0, gt=0, description="HTTP mode: time a client has to send a request's body, once its headers came."
    )
    http_trusted_proxies: str = Field(
        default="127.0.0.1,::1",
        description="HTTP mode: addresses of reverse proxies, comma-separated: their X-Forwarded-For names the client, "
        "and their connections are not limited per address.",
    )
    http_max_sessions: int = Field(
        default=1000, ge=1, description="HTTP mode (with sessions): open MCP sessions, all callers."
    )
    http_sessions_per_caller: int = Field(
        default=16, ge=1, description="HTTP mode (with sessions): open MCP sessions one caller (one token) may hold."
    )
    http_sessions_per_address: int = Field(
        default=64, ge=1, description="HTTP mode (with sessions): open MCP sessions from one client address."
    )
    http_session_idle_s: float = Field(
        default=600.0, gt=0, description="HTTP mode (with sessions): a session with no request for this long is closed."
    )
    consent_key: SecretStr | None = Field(
        default=None,
        description="The secret (32+ characters) that seals the person's yes on protocol 2026-07-28, the same on "
        "every replica; several, comma-separated, while rotating (the first seals). Default: one of this process.",
    )
    sandbox: bool = Field(default=False, description="Simulate the API on loopback: no token, no network, no cost.")
    sandbox_time_scale: float = Field(default=1.0, gt=0, description="Sandbox job durations × this (1 = ~10 s).")

    @field_validator("api_token", mode="before")
    @classmethod
    def _blank_token_is_none(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value.strip() if isinstance(value, str) else value

    @field_validator("consent_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and any(
            len(k.strip()) < MIN_CONSENT_KEY_CHARS for k in value.get_secret_value().split(",")
        ):
            raise ValueError(
                f"RUNCOMFY_CONSENT_KEY needs at least {MIN_CONSENT_KEY_CHARS} characters of secret randomness per key; "
                'make one with: python -c "import secrets; print(secrets.token_hex(32))"'
            )
        return value

    @field_validator("base_url", "account_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"RUNCOMFY_BASE_URL and RUNCOMFY_ACCOUNT_URL must start with http(s)://, got {value!r}")
        return value.rstrip("/")

    @field_validator("public_url")
    @classmethod
    def _origin_only(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"RUNCOMFY_PUBLIC_URL must be an http(s) URL, got {value!r}")
        if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError(
                "RUNCOMFY_PUBLIC_URL must be the server's origin, like https://mcp.example.com, without a path: "
                f"{value!r}"
            )
        return f"{parts.scheme}://{parts.netloc}".lower()

    def oauth_keys(self) -> list[str]:
        secret = self.oauth_key.get_secret_value() if self.oauth_key else ""
        return [k.strip() for k in secret.split(",") if k.strip()]

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            attempts=self.retry_attempts,
            wait_initial_s=self.retry_wait_initial_s,
            wait_max_s=self.retry_wait_max_s,
            retry_after_max_s=self.retry_after_max_s,
            deadline_s=self.request_timeout_s + self.connect_timeout_s,
        )

    def input_root_paths(self) -> tuple[Path, ...]:
        if self.input_roots is None:
            return (Path.home(),)
        return tuple(Path(p).expanduser() for p in self.input_roots.split(os.pathsep) if p.strip())

    def player_media_domains(self) -> list[str]:
        """Origins for the player's CSP: RunComfy's output hosts, the API's origin when it is not RunComfy's
        (the sandbox serves its files there), and any the operator adds."""
        domains = [f"https://{host}" for host in self.output_host_patterns()]
        if self.base_url != DEFAULT_BASE_URL:
            domains.append(self.base_url)
        domains += [d.strip().rstrip("/") for d in self.player_domains.split(",") if d.strip()]
        return list(dict.fromkeys(domains))

    def output_host_patterns(self) -> tuple[str, ...]:
        return tuple(p.strip().lower() for p in self.output_hosts.split(",") if p.strip())

    def account_base_url(self) -> str:
        if self.account_url:
            return self.account_url
        return DEFAULT_ACCOUNT_URL if self.base_url == DEFAULT_BASE_URL else self.base_url

    def spend_limits(self) -> SpendLimits:
        return SpendLimits(
            max_job_usd=self.max_job_usd,
            budget_usd=self.budget_usd,
            window_h=self.budget_window_h,
            max_jobs_per_hour=self.max_jobs_per_hour,
            max_active_jobs=self.max_active_jobs,
            allow_unpriced=self.allow_unpriced,
            confirm_above_usd=self.confirm_above_usd,
        )

    def specs_dir(self) -> Path:
        """The user's spec folder (`models add` writes there); the sandbox's is a folder of its own inside it."""
        folder = (self.tool_specs_dir or default_specs_dir()).expanduser()
        return folder / SANDBOX_FOLDER if self.sandbox else folder

    def specs_dir_required(self) -> bool:
        """A folder named explicitly must exist; the sandbox's own is made by its first `models add --sandbox`."""
        return self.tool_specs_dir is not None and not self.sandbox

    def data_folder(self) -> Path:
        """Where the history, the catalog cache and the previews live. The sandbox keeps its own, so a simulated
        job is never listed, counted against a limit or charged to a budget by a real server."""
        folder = self.data_dir.expanduser()
        return folder / SANDBOX_FOLDER if self.sandbox else folder

    def history_database_url(self) -> str | None:
        """PostgreSQL's URL when the history lives there. Never in sandbox mode: a database real servers share
        must not hold simulated jobs, so the sandbox keeps its history in its own SQLite file."""
        if self.sandbox or self.database_url is None:
            return None
        return self.database_url.get_secret_value()

    def model_ids(self) -> list[str]:
        return list(dict.fromkeys(m.strip() for m in (self.models or "").split(",") if m.strip()))

    def consent_keys(self) -> list[str] | None:
        """The keys that seal the person's yes (the first seals, all open); None: a key of this process only."""
        if self.consent_key is None:
            return None
        return [k.strip() for k in self.consent_key.get_secret_value().split(",")]

    def token_value(self) -> str | None:
        return self.api_token.get_secret_value() if self.api_token else None

    def secrets(self) -> tuple[str, ...]:
        """What no output, log line or error may show: the token, the database password (and the pieces of it a
        driver may quote from a URL it cannot parse), and the OAuth sealing keys."""
        token = self.token_value()
        database = self.database_url.get_secret_value() if self.database_url else None
        return (*((token,) if token else ()), *dsn_secrets(database), *self.oauth_keys())
