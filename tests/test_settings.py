"""Daemon settings come from STACKMM_* env vars and .env; secrets from env or systemd credentials."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from daemon.settings import SecretNotFound, Settings, read_secret


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("STACKMM_REDIS_URL", "STACKMM_STATE_DIR", "STACKMM_LOG_FORMAT", "STACKMM_INSTANCE",
                 "STACKMM_SHUTDOWN_TIMEOUT_S", "STACKMM_LOG_LEVEL", "STATE_DIRECTORY", "JOURNAL_STREAM",
                 "CREDENTIALS_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env from the repo


def test_defaults_use_embedded_redis_local_state_and_ten_second_shutdown() -> None:
    settings = Settings()
    assert settings.redis_url is None
    assert settings.state_dir == Path("state")
    assert settings.shutdown_timeout_s == 10.0
    assert settings.instance is None


def test_env_prefix_sets_every_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACKMM_REDIS_URL", "redis://127.0.0.1:7001/2")
    monkeypatch.setenv("STACKMM_STATE_DIR", "/tmp/x")
    monkeypatch.setenv("STACKMM_LOG_FORMAT", "json")
    monkeypatch.setenv("STACKMM_INSTANCE", "bera-a")
    monkeypatch.setenv("STACKMM_SHUTDOWN_TIMEOUT_S", "4.5")
    settings = Settings()
    assert settings.redis_url == "redis://127.0.0.1:7001/2"
    assert settings.state_dir == Path("/tmp/x")
    assert settings.resolved_log_format() == "json"
    assert settings.instance == "bera-a"
    assert settings.shutdown_timeout_s == 4.5


def test_dotenv_file_is_read_and_env_wins_over_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("STACKMM_INSTANCE=from-dotenv\nSTACKMM_LOG_LEVEL=debug\n")
    assert Settings().instance == "from-dotenv"
    assert Settings().log_level == "debug"
    monkeypatch.setenv("STACKMM_INSTANCE", "from-env")
    assert Settings().instance == "from-env"


def test_empty_redis_url_means_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACKMM_REDIS_URL", "")
    assert Settings().redis_url is None


def test_systemd_state_directory_is_the_default_state_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/stackmm")
    assert Settings().state_dir == Path("/var/lib/stackmm")


def test_auto_log_format_is_json_under_journald(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNAL_STREAM", "8:12345")
    assert Settings().resolved_log_format() == "json"
    monkeypatch.setenv("STACKMM_LOG_FORMAT", "console")
    assert Settings().resolved_log_format() == "console"


def test_invalid_values_are_rejected_with_the_field_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACKMM_LOG_FORMAT", "xml")
    with pytest.raises(ValidationError, match="log_format"):
        Settings()
    monkeypatch.setenv("STACKMM_LOG_FORMAT", "json")
    monkeypatch.setenv("STACKMM_SHUTDOWN_TIMEOUT_S", "0")
    with pytest.raises(ValidationError, match="shutdown_timeout_s"):
        Settings()


def test_secret_from_environment_wins_over_credentials_directory(tmp_path: Path) -> None:
    (tmp_path / "ALPHA_KEY").write_text("from-file\n")
    env = {"ALPHA_KEY": "from-env", "CREDENTIALS_DIRECTORY": str(tmp_path)}
    assert read_secret("ALPHA_KEY", env) == "from-env"


def test_secret_from_systemd_credentials_directory_is_stripped(tmp_path: Path) -> None:
    (tmp_path / "ALPHA_SECRET").write_text("s3cr3t-value\n")
    assert read_secret("ALPHA_SECRET", {"CREDENTIALS_DIRECTORY": str(tmp_path)}) == "s3cr3t-value"


def test_missing_secret_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(SecretNotFound, match=r"environment variable NOPE or credential file .*NOPE"):
        read_secret("NOPE", {"CREDENTIALS_DIRECTORY": str(tmp_path)})


def test_venue_credentials_come_from_systemd_credentials_and_are_redacted(tmp_path: Path) -> None:
    from daemon.app import resolve_credentials
    from daemon.logging import REDACTOR
    from strategies.config import VenueConfig

    (tmp_path / "STACKMM_ALPHA_API_KEY").write_text("alpha-key-from-credential\n")
    (tmp_path / "STACKMM_ALPHA_SECRET").write_text("alpha-secret-from-credential\n")
    venue = VenueConfig.model_validate({
        "symbols": ["BERA/USDT"],
        "credentials": {"api_key_env": "STACKMM_ALPHA_API_KEY", "secret_env": "STACKMM_ALPHA_SECRET"},
    })
    creds = resolve_credentials("alpha", venue, {"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert (creds.api_key, creds.secret) == ("alpha-key-from-credential", "alpha-secret-from-credential")
    assert REDACTOR.scrub_text("sig for alpha-secret-from-credential") == "sig for ***"
    assert "alpha-secret" not in repr(creds)


def test_a_venue_without_its_secret_fails_naming_where_to_put_it() -> None:
    from daemon.app import resolve_credentials
    from strategies.config import VenueConfig

    venue = VenueConfig.model_validate({
        "symbols": ["BERA/USDT"],
        "credentials": {"api_key_env": "K_ENV", "secret_env": "S_ENV"},
    })
    with pytest.raises(SecretNotFound, match="S_ENV"):
        resolve_credentials("alpha", venue, {"K_ENV": "some-key-value"})
