"""Signing, recvWindow and request-weight rules of the paper venue, without the network."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from connectors.paper.auth import ApiCredential, BinanceError, KeyRing, sign, split_signature
from connectors.paper.weights import WeightLimiter, depth_weight, request_weight
from strategies.clock import ManualClock

NOW_MS = 1_700_000_000_000
KEYS = KeyRing([ApiCredential("key-a", "secret-a", "alice")])


def signed_query(params: dict[str, object], secret: str = "secret-a") -> str:
    payload = urlencode(params)
    return payload + "&signature=" + sign(payload, secret)


def test_binance_documented_signature_example() -> None:
    # The HMAC example from Binance's Spot API documentation.
    secret = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
    payload = (
        "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
        "&recvWindow=5000&timestamp=1499827319559"
    )
    assert sign(payload, secret) == "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"


def test_valid_signature_in_query_or_body_is_accepted() -> None:
    query = signed_query({"symbol": "BERAUSDT", "timestamp": NOW_MS, "recvWindow": 5000})
    assert KEYS.verify("key-a", query, "", NOW_MS).account == "alice"
    assert KEYS.verify("key-a", "", query, NOW_MS).account == "alice"


def test_query_and_body_are_signed_concatenated_like_binance() -> None:
    query = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC"
    body = f"quantity=1&price=0.1&recvWindow=5000&timestamp={NOW_MS}"
    signature = sign(query + body, "secret-a")
    assert KEYS.verify("key-a", query, body + "&signature=" + signature, NOW_MS).account == "alice"


@pytest.mark.parametrize(
    ("api_key", "query", "code"),
    [
        ("key-a", signed_query({"timestamp": NOW_MS}, secret="wrong"), -1022),
        ("key-a", urlencode({"timestamp": NOW_MS}), -1102),
        ("nobody", signed_query({"timestamp": NOW_MS}), -2015),
        (None, signed_query({"timestamp": NOW_MS}), -2014),
        ("key-a", signed_query({"timestamp": NOW_MS - 5001}), -1021),
        ("key-a", signed_query({"timestamp": NOW_MS - 9000, "recvWindow": 10000}), None),
        ("key-a", signed_query({"timestamp": NOW_MS + 1000}), -1021),
        ("key-a", signed_query({"timestamp": NOW_MS, "recvWindow": 70000}), -1131),
    ],
    ids=[
        "bad-signature",
        "no-signature",
        "unknown-key",
        "no-key",
        "stale",
        "wide-window",
        "future",
        "window-too-big",
    ],
)
def test_signed_request_checks(api_key: str | None, query: str, code: int | None) -> None:
    if code is None:
        KEYS.verify(api_key, query, "", NOW_MS)
        return
    with pytest.raises(BinanceError) as err:
        KEYS.verify(api_key, query, "", NOW_MS)
    assert err.value.code == code


def test_tampered_parameter_breaks_the_signature() -> None:
    query = signed_query({"symbol": "BERAUSDT", "quantity": "1", "timestamp": NOW_MS})
    with pytest.raises(BinanceError) as err:
        KEYS.verify("key-a", query.replace("quantity=1", "quantity=9"), "", NOW_MS)
    assert err.value.code == -1022


def test_ws_api_params_are_signed_sorted_by_key() -> None:
    params = {"timestamp": str(NOW_MS), "apiKey": "key-a", "recvWindow": "5000"}
    payload = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
    assert (
        KEYS.verify_ws_params({**params, "signature": sign(payload, "secret-a")}, NOW_MS).account == "alice"
    )


def test_split_signature_keeps_the_rest_in_order() -> None:
    assert split_signature("b=2&signature=ab&a=1") == ("b=2&a=1", "ab")
    assert split_signature("a=1") == ("a=1", None)


def test_weights_follow_binance_table() -> None:
    assert [depth_weight(n) for n in (5, 100, 500, 1000, 5000)] == [5, 5, 25, 50, 250]
    assert request_weight("GET", "openOrders", {"symbol": "BERAUSDT"}) == 6
    assert request_weight("GET", "openOrders", {}) == 80
    assert request_weight("GET", "exchangeInfo", {}) == 20
    assert request_weight("POST", "order", {}) == 1
    assert request_weight("GET", "account", {}) == 20


def test_weight_limiter_rolls_over_a_minute() -> None:
    clock = ManualClock()
    limiter = WeightLimiter(100, clock)
    assert limiter.charge("k", 60) == 60
    clock.advance(30)
    assert limiter.charge("k", 50) == 110
    assert limiter.over_limit("k")
    assert limiter.retry_after("k") == 30  # when the first charge leaves the window
    assert limiter.used("other") == 0
    clock.advance(30)
    assert limiter.used("k") == 50
    assert not limiter.over_limit("k")
