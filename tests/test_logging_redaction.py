"""No API key, secret or signature reaches a log line, whichever way it gets into an event."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from daemon.logging import REDACTED, Redactor, configure_logging

API_KEY = "demoAlphaKey0123456789abcdef"
SECRET = "demoAlphaSecretZYXWVU987654321"
SIGNATURE = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


@pytest.fixture
def output() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("json", "debug", stream=stream, redactor=Redactor([API_KEY, SECRET]))
    yield stream
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_secret_values_are_scrubbed_from_event_fields(output: io.StringIO) -> None:
    log = structlog.get_logger("t")
    log.info("venue_connected", venue="alpha", note=f"using {API_KEY}", nested={"creds": [SECRET]})
    text = output.getvalue()
    assert API_KEY not in text and SECRET not in text
    [line] = _lines(output)
    assert line["venue"] == "alpha"
    assert line["note"] == f"using {REDACTED}"


def test_fields_named_like_secrets_are_masked_whatever_they_hold(output: io.StringIO) -> None:
    structlog.get_logger("t").info("creds", api_key="unknown-key-value", secret="x" * 10, apiKey="k" * 12)
    [line] = _lines(output)
    assert line["api_key"] == REDACTED and line["secret"] == REDACTED and line["apiKey"] == REDACTED


def test_signature_in_a_url_of_an_exception_traceback_is_scrubbed(output: io.StringIO) -> None:
    url = f"http://127.0.0.1:18401/api/v3/order?symbol=BERAUSDT&timestamp=1&signature={SIGNATURE}"
    try:
        raise RuntimeError(f"POST {url} failed, headers {{'X-MBX-APIKEY': 'unregistered-key-abc'}}")
    except RuntimeError:
        structlog.get_logger("t").exception("order_failed")
    text = output.getvalue()
    assert SIGNATURE not in text
    assert "unregistered-key-abc" not in text
    assert "signature=***" in text
    assert "RuntimeError" in text  # the traceback itself is kept


def test_stdlib_loggers_such_as_ccxt_go_through_the_same_redaction(output: io.StringIO) -> None:
    ccxt_log = logging.getLogger("ccxt.base.exchange")
    ccxt_log.warning("request %s with secret %s", f"signature={SIGNATURE}", SECRET)
    text = output.getvalue()
    assert SIGNATURE not in text and SECRET not in text
    assert _lines(output)[0]["level"] == "warning"


def test_secrets_added_after_configuration_are_scrubbed_too() -> None:
    redactor = Redactor()
    stream = io.StringIO()
    configure_logging("console", "info", stream=stream, redactor=redactor)
    try:
        redactor.add("late-loaded-secret-123")
        structlog.get_logger("t").info("loaded", value="late-loaded-secret-123")
        assert "late-loaded-secret-123" not in stream.getvalue()
        assert REDACTED in stream.getvalue()
    finally:
        structlog.reset_defaults()
        logging.getLogger().handlers.clear()


def test_short_strings_are_not_treated_as_secrets() -> None:
    # a 3-character "secret" would blank out ordinary words in every line
    redactor = Redactor(["abc"])
    assert redactor.scrub_text("abc def") == "abc def"
