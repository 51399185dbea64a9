"""structlog configuration for the daemon, with a redaction step every event passes through.

Secrets get into log lines by accident: an exception text that quotes a request URL with a
``signature=`` query, a ccxt debug line with the ``X-MBX-APIKEY`` header, a config repr. So
the last processor before rendering scrubs (1) the values of keys whose names mark them as
secret, (2) every known secret string wherever it occurs, (3) signature/apikey patterns.
Standard-library logging (ccxt, websockets, aiohttp) is routed through the same chain.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Iterable, MutableMapping
from typing import Any, Literal, TextIO

import structlog

REDACTED = "***"

# key names whose values are never logged, whatever they hold
_SECRET_KEY = re.compile(
    r"(api[_-]?key|apikey|secret|signature|password|passphrase|token|private[_-]?key)", re.I
)
# `signature=abcd…`, `"apiKey": "…"`, `X-MBX-APIKEY: …` inside free text (URLs, reprs, headers)
_SECRET_PATTERNS = (
    re.compile(r"(?i)(signature=)[0-9a-zA-Z%+/=_-]+"),
    re.compile(r"(?i)(x-mbx-apikey['\"]?\s*[:=]\s*['\"]?)[^'\"\s,}]+"),
    re.compile(r"(?i)(['\"](?:apiKey|secret|password|api_key|api_secret)['\"]\s*:\s*['\"])[^'\"]*"),
)
# shorter strings would scrub ordinary words; real keys are far longer
_MIN_SECRET_LEN = 6


class Redactor:
    """Knows the secrets of this process and removes them from log events."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()
        self.add(*secrets)

    def add(self, *secrets: str) -> None:
        """Register secret values (API keys, secrets) learned at run time."""
        with self._lock:
            known = set(self._secrets)
            known.update(s for s in secrets if s and len(s) >= _MIN_SECRET_LEN)
            # longest first, so a secret containing another is removed whole
            self._secrets = tuple(sorted(known, key=len, reverse=True))

    def scrub_text(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        for pattern in _SECRET_PATTERNS:
            text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
        return text

    def scrub(self, value: Any, key: str = "") -> Any:
        if key and _SECRET_KEY.search(key) and value not in (None, "", False):
            return REDACTED
        if isinstance(value, str):
            return self.scrub_text(value)
        if isinstance(value, dict):
            return {k: self.scrub(v, str(k)) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.scrub(v) for v in value]
        if isinstance(value, int | float | bool) or value is None:
            return value
        # anything else is rendered by repr/str later: scrub that text now
        return self.scrub_text(str(value))

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        """structlog processor."""
        for key in list(event_dict):
            if key.startswith("_"):
                continue  # structlog internals (_record, _from_structlog)
            event_dict[key] = self.scrub(event_dict[key], key if key != "event" else "")
        return event_dict


# One per process: the daemon adds secrets as it resolves them.
REDACTOR = Redactor()


def configure_logging(
    fmt: Literal["console", "json"] = "console",
    level: str = "info",
    stream: TextIO | None = None,
    redactor: Redactor = REDACTOR,
) -> None:
    """Configure structlog and stdlib logging to write one redacted line per event to ``stream``."""
    out = stream if stream is not None else sys.stderr
    level_no = logging.getLevelNamesMapping()[level.upper()]
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer: Any
    if fmt == "json":
        # tracebacks become a string field first, so they are scrubbed like everything else
        final: list[Any] = [structlog.processors.format_exc_info, redactor]
        renderer = structlog.processors.JSONRenderer()
    else:
        final = [structlog.processors.format_exc_info, redactor]
        renderer = structlog.dev.ConsoleRenderer(colors=out.isatty())
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(level_no),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final, renderer],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level_no)
    # ccxt and websockets are chatty at debug and would log request bodies; keep them at warning
    # unless the operator asked for debug explicitly.
    library_level = level_no if level_no <= logging.DEBUG else max(level_no, logging.WARNING)
    for noisy in ("ccxt", "websockets", "aiohttp", "asyncio"):
        logging.getLogger(noisy).setLevel(library_level)
