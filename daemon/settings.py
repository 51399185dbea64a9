"""Process settings of the daemon (not the strategy): from ``STACKMM_*`` env vars and ``.env``.

The strategy lives in the YAML config; these are the things that differ between a laptop
and a systemd host: where Redis is, where state goes, how logs look, secrets.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LogFormat = Literal["auto", "console", "json"]


def _default_state_dir() -> Path:
    # systemd's StateDirectory= exports STATE_DIRECTORY (/var/lib/stackmm); a terminal gets ./state.
    systemd_state = os.environ.get("STATE_DIRECTORY")
    if systemd_state:
        return Path(systemd_state.split(":")[0])
    return Path("state")


class Settings(BaseSettings):
    """Daemon settings. Every field is ``STACKMM_<FIELD>`` in the environment or ``.env``."""

    model_config = SettingsConfigDict(
        env_prefix="STACKMM_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    redis_url: str | None = Field(
        default=None, description="Redis to use; unset starts an embedded redis-server under state_dir"
    )
    state_dir: Path = Field(default_factory=_default_state_dir, description="SQLite, embedded Redis, locks")
    log_format: LogFormat = Field(default="auto", description="console, json, or auto (json unless a tty)")
    log_level: str = Field(default="info")
    instance: str | None = Field(default=None, description="instance name; default: the config's")
    shutdown_timeout_s: float = Field(default=10.0, gt=0, description="budget for a clean stop on SIGTERM")
    publish_interval_s: float = Field(default=0.25, gt=0, description="minimum gap between state publishes")
    ready_timeout_s: float = Field(default=60.0, gt=0, description="how long start-up may take to quote")

    @field_validator("redis_url")
    @classmethod
    def _empty_url_means_unset(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.lower()
        if level not in ("debug", "info", "warning", "error", "critical"):
            raise ValueError(f"log level {value!r} is not one of debug, info, warning, error, critical")
        return level

    def resolved_log_format(self) -> Literal["console", "json"]:
        """``auto`` is JSON under journald (or any non-terminal) and console on a terminal."""
        if self.log_format != "auto":
            return self.log_format
        if os.environ.get("JOURNAL_STREAM") or not sys.stderr.isatty():
            return "json"
        return "console"


class SecretNotFound(LookupError):
    """A credential the config names is in neither the environment nor the credentials directory."""


def read_secret(name: str, environ: dict[str, str] | None = None) -> str:
    """The value of the secret ``name``: env var ``name``, else ``$CREDENTIALS_DIRECTORY/name``.

    The second form is what systemd's ``LoadCredential=name:/path`` provides, so a key never
    has to be in the unit or the environment file.
    """
    env = os.environ if environ is None else environ
    value = env.get(name)
    if value:
        return value.strip()
    credentials = env.get("CREDENTIALS_DIRECTORY")
    if credentials:
        path = Path(credentials) / name
        if path.is_file():
            return path.read_text(encoding="utf-8").strip()
    where = f"environment variable {name}"
    if credentials:
        where += f" or credential file {Path(credentials) / name}"
    raise SecretNotFound(f"secret {name!r} not found: set {where}")
