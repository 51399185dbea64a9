"""Strategy YAML -> :class:`StrategyConfig`, with errors that name the file, the key and what was wanted.

Every problem becomes one line of a :class:`ConfigError`, e.g.::

    config/bera-usdt.yaml: tob_lines[0].hourly_quantity: expected a decimal number, got 'abc'
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from strategies.config import PATTERN_MEANINGS, StrategyConfig

# A message from a model validator that already names a key below the model ("x.y[0]: ...").
_KEYED_MESSAGE = re.compile(r"^([A-Za-z_][\w]*(?:\[\d+\])?(?:\.[A-Za-z_]\w*(?:\[\d+\])?)*): (.*)$")


class ConfigError(ValueError):
    """A strategy config that cannot be used; ``problems`` holds one line per problem."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = [f"{source}: {problem}" for problem in problems]
        super().__init__("\n".join(self.problems))


def load_config(path: str | Path) -> StrategyConfig:
    """Read and validate one strategy YAML file."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, [f"cannot read: {exc.strerror or exc}"]) from exc
    return parse_config(text, source)


def parse_config(text: str, source: str = "<config>") -> StrategyConfig:
    """Validate YAML text; ``source`` names it in error messages."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, [f"{where}invalid YAML: {problem}"]) from exc
    if not isinstance(data, dict):
        raise ConfigError(source, [f"expected a mapping of keys at the top level, got {type(data).__name__}"])
    return validate_data(data, source)


def validate_data(data: dict[str, Any], source: str = "<config>") -> StrategyConfig:
    """Validate already-parsed data (e.g. from a builder or a test)."""
    try:
        return StrategyConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, describe_errors(exc)) from exc


def describe_errors(exc: ValidationError) -> list[str]:
    """One ``key.path: what was expected`` line per pydantic error."""
    lines: list[str] = []
    for error in exc.errors(include_url=False):
        path = format_path(error["loc"])
        kind = error["type"]
        given = _show(error.get("input"))
        ctx = error.get("ctx", {})
        if kind == "value_error":
            message = str(error["msg"]).removeprefix("Value error, ")
            for part in message.splitlines():
                match = _KEYED_MESSAGE.match(part)
                if match:
                    key = f"{path}.{match.group(1)}" if path else match.group(1)
                    lines.append(f"{key}: {match.group(2)}")
                else:
                    lines.append(f"{path or '(top level)'}: {part}")
            continue
        if kind == "missing":
            message = "required key is missing"
        elif kind == "extra_forbidden":
            message = "unknown key"
        elif kind in ("literal_error", "enum"):
            message = f"expected {ctx.get('expected', '')}, got {given}"
        elif kind == "string_pattern_mismatch":
            pattern = str(ctx.get("pattern", ""))
            meaning = PATTERN_MEANINGS.get(pattern, f"text matching {pattern}")
            message = f"expected {meaning}, got {given}"
        elif kind in ("float_parsing", "float_type", "int_parsing", "int_type", "int_from_float"):
            noun = "a whole number" if kind.startswith("int") else "a number"
            message = f"expected {noun}, got {given}"
        elif kind in ("dict_type", "model_type", "model_attributes_type"):
            message = f"expected a mapping of keys, got {given}"
        elif kind == "list_type":
            message = f"expected a list, got {given}"
        elif kind in _BOUNDS:
            word, key = _BOUNDS[kind]
            message = f"expected a value {word} {ctx.get(key)}, got {given}"
        elif kind == "too_short":
            message = f"expected at least {ctx.get('min_length')} item(s), got {given}"
        else:
            message = f"{str(error['msg'])[0].lower()}{str(error['msg'])[1:]}, got {given}"
        lines.append(f"{path or '(top level)'}: {message}")
    return lines


_BOUNDS = {
    "greater_than": ("above", "gt"),
    "greater_than_equal": ("of at least", "ge"),
    "less_than": ("below", "lt"),
    "less_than_equal": ("of at most", "le"),
}


def _show(value: object) -> str:
    """A user's value as they wrote it: decimals plainly, text quoted."""
    if isinstance(value, Decimal):
        return str(value)
    return repr(value)


def format_path(loc: Sequence[int | str]) -> str:
    """``("tob_lines", 0, "hourly_quantity")`` -> ``tob_lines[0].hourly_quantity``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def dump_config(config: StrategyConfig, header: str = "") -> str:
    """YAML text for a config (keys in model order); loads back to an equal config."""
    body = yaml.safe_dump(config.to_yaml_data(), sort_keys=False, default_flow_style=False, width=100)
    prefix = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return prefix + body


def restart_needed(old: StrategyConfig, new: StrategyConfig) -> str:
    """Why ``new`` cannot be applied to a running daemon ('' when it can)."""
    if new.instance != old.instance:
        return f"instance changed ({old.instance} -> {new.instance}): restart to apply"
    if new.venues != old.venues:
        return "venues (exchanges, URLs, credentials or symbols) changed: restart to apply"
    return ""
