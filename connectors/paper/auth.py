"""Binance-style request authentication: API keys, HMAC-SHA256 signatures, ``recvWindow``.

Binance signs ``totalParams`` (the query string followed by the request body) with the
account's secret and sends the hex digest as the ``signature`` parameter; the API key travels
in the ``X-MBX-APIKEY`` header. A request is only valid inside ``recvWindow`` milliseconds of
its ``timestamp``. This module checks exactly that, on the raw (still url-encoded) strings the
client signed, so any re-encoding difference shows up as a bad signature, as on Binance.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import parse_qsl

# Binance rejects a recvWindow above one minute (-1131) and allows clocks one second ahead.
MAX_RECV_WINDOW_MS = 60_000
DEFAULT_RECV_WINDOW_MS = 5_000
FUTURE_TOLERANCE_MS = 1_000


class BinanceError(Exception):
    """An error answered the way Binance answers it: HTTP status, numeric code, message."""

    def __init__(self, status: int, code: int, msg: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{code}: {msg}")
        self.status = status
        self.code = code
        self.msg = msg
        self.headers = headers or {}

    def body(self) -> dict[str, object]:
        return {"code": self.code, "msg": self.msg}


@dataclass(frozen=True, slots=True)
class ApiCredential:
    """One API key of one venue account."""

    api_key: str
    secret: str
    account: str


def sign(payload: str, secret: str) -> str:
    """The hex HMAC-SHA256 of ``payload`` under ``secret`` (what the client sends as ``signature``)."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def split_signature(total_params: str) -> tuple[str, str | None]:
    """Remove the ``signature=`` parameter from a raw parameter string.

    Returns the signed payload (the other parameters, in their original order and encoding)
    and the signature, or None when there is none.
    """
    signature: str | None = None
    kept: list[str] = []
    for part in total_params.split("&"):
        if part.startswith("signature="):
            signature = part[len("signature=") :]
        elif part:
            kept.append(part)
    return "&".join(kept), signature


class KeyRing:
    """The API keys a venue knows, and the signed-request checks made with them."""

    def __init__(self, credentials: list[ApiCredential]) -> None:
        self._by_key = {c.api_key: c for c in credentials}

    def credential(self, api_key: str | None) -> ApiCredential:
        """The credential for an ``X-MBX-APIKEY`` header value, or Binance's -2014/-2015 error."""
        if not api_key:
            raise BinanceError(401, -2014, "API-key format invalid.")
        credential = self._by_key.get(api_key)
        if credential is None:
            raise BinanceError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        return credential

    def verify(self, api_key: str | None, raw_query: str, raw_body: str, now_ms: int) -> ApiCredential:
        """Check a signed REST request; returns its credential or raises :class:`BinanceError`."""
        credential = self.credential(api_key)
        query, query_signature = split_signature(raw_query)
        body, body_signature = split_signature(raw_body)
        signature = query_signature or body_signature
        # Binance's totalParams: the query string concatenated with the body, no separator.
        payload = query + body
        params = dict(parse_qsl(query, keep_blank_values=True))
        params.update(parse_qsl(body, keep_blank_values=True))
        if signature is None:
            raise BinanceError(
                400, -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed."
            )
        check_timestamp(params, now_ms)
        if not hmac.compare_digest(sign(payload, credential.secret), signature.lower()):
            raise BinanceError(400, -1022, "Signature for this request is not valid.")
        return credential

    def verify_ws_params(self, params: dict[str, str], now_ms: int) -> ApiCredential:
        """Check a signed WebSocket API request (its params sorted by key, ``signature`` apart)."""
        credential = self.credential(params.get("apiKey"))
        signature = params.get("signature")
        if not signature:
            raise BinanceError(
                400, -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed."
            )
        check_timestamp(params, now_ms)
        payload = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "signature")
        if not hmac.compare_digest(sign(payload, credential.secret), str(signature).lower()):
            raise BinanceError(400, -1022, "Signature for this request is not valid.")
        return credential


def check_timestamp(params: dict[str, str], now_ms: int) -> None:
    """Binance's rule: ``timestamp < now + 1000`` and ``now - timestamp <= recvWindow``."""
    raw_ts = params.get("timestamp")
    if raw_ts is None or raw_ts == "":
        raise BinanceError(
            400, -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed."
        )
    try:
        timestamp = int(raw_ts)
        recv_window = int(params.get("recvWindow", DEFAULT_RECV_WINDOW_MS))
    except ValueError as exc:
        raise BinanceError(400, -1100, "Illegal characters found in parameter 'timestamp'.") from exc
    if recv_window > MAX_RECV_WINDOW_MS or recv_window <= 0:
        raise BinanceError(400, -1131, "recvWindow must be less than 60000")
    if timestamp >= now_ms + FUTURE_TOLERANCE_MS or now_ms - timestamp > recv_window:
        raise BinanceError(400, -1021, "Timestamp for this request is outside of the recvWindow.")
