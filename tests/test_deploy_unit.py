"""deploy/stackmm@.service is a valid, hardened Type=notify template; the env example matches Settings."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.settings import Settings

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
UNIT = DEPLOY / "stackmm@.service"
VENV_BIN = Path(sys.executable).parent


def _directives(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "[")) and "=" in line:
            key, value = line.split("=", 1)
            found.setdefault(key, []).append(value)
    return found


def _seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)(s|min)?", value)
    assert match, value
    return float(match.group(1)) * (60 if match.group(2) == "min" else 1)


def _verify(unit: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", "verify", "--man=no", f"./{unit.name}"],
        cwd=unit.parent, capture_output=True, text=True, timeout=60, check=False,
    )


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    # instantiate the template, with ExecStart pointing at this checkout's stackmm so the
    # "is the command executable" check applies to a real file
    text = UNIT.read_text().replace("/opt/stackmm/.venv/bin/stackmm", str(VENV_BIN / "stackmm"))
    unit = tmp_path / "stackmm@bera-usdt.service"
    unit.write_text(text)
    result = _verify(unit)
    assert result.returncode == 0, result.stderr
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if unit.name in line]
    assert complaints == []


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_verify_would_catch_a_broken_unit(tmp_path: Path) -> None:
    # the check above is meaningful only if verify reports what we would get wrong
    unit = tmp_path / "broken@x.service"
    unit.write_text("[Service]\nType=notify\nExecStart=/bin/true\nProtectSystem=bogus\nStopTimeout=3\n")
    output = _verify(unit).stderr
    assert "bogus" in output and "Unknown key" in output


def test_unit_is_notify_with_watchdog_credentials_and_restart_policy() -> None:
    d = _directives(UNIT.read_text())
    assert d["Type"] == ["notify"]
    assert "WatchdogSec" in d
    assert d["Restart"] == ["on-failure"]
    assert d["ExecStart"][0].endswith("stackmm run --config /etc/stackmm/%i.yaml")
    assert d["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert d["StateDirectory"] == ["stackmm/%i"]
    assert all(":" in c for c in d["LoadCredential"]) and d["LoadCredential"]


def test_stop_timeout_leaves_room_for_the_daemons_own_shutdown_timeout() -> None:
    d = _directives(UNIT.read_text())
    assert _seconds(d["TimeoutStopSec"][0]) > Settings.model_fields["shutdown_timeout_s"].default


def test_unit_is_hardened() -> None:
    d = _directives(UNIT.read_text())
    assert d["User"] == ["stackmm"]
    assert d["NoNewPrivileges"] == ["yes"]
    assert d["ProtectSystem"] == ["strict"]
    assert d["ProtectHome"] == ["yes"]
    assert d["PrivateTmp"] == ["yes"]
    assert d["CapabilityBoundingSet"] == [""]


def test_env_example_sets_only_real_settings() -> None:
    fields = {f"STACKMM_{name.upper()}" for name in Settings.model_fields}
    names = {
        line.split("=", 1)[0].lstrip("#")
        for line in (DEPLOY / "stackmm.env.example").read_text().splitlines()
        if re.match(r"#?STACKMM_[A-Z_]+=", line)
    }
    assert names and names <= fields, names - fields
