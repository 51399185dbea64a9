"""The ccxt constructor config that points the unmodified ``binance`` class at a paper venue.

Use it for both ``ccxt.async_support.binance(config)`` and ``ccxt.pro.binance(config)``.
Only URLs and options change; the client code is the one that talks to Binance.

Why each override (checked against the installed ccxt 4.5 source):

- ``urls.api.public`` / ``private``: every Spot REST call is built from these (``/api/v3``).
  ``sapi`` and the futures URLs point at the venue too, so a stray call gets a clear 404
  from 127.0.0.1 instead of leaving the machine.
- ``options.fetchMarkets.types = ['spot']``: otherwise ``load_markets`` also asks the futures
  APIs for their exchange info.
- ``options.fetchCurrencies = False`` and ``fetchMargins = False``: with keys set, ccxt would
  call the wallet and margin ``sapi`` endpoints during ``load_markets``.
- ``urls.api.ws.spot`` ends in ``/stream``: ccxt pro treats a connection as Spot (``U``/``u``
  depth sequencing) only if its URL contains ``/stream``; it appends a stream index
  (``.../stream/0``), which the venue serves as a combined stream.
- ``urls.api.ws.ws-api.spot``: ccxt pro's Spot ``watch_orders``/``watch_balance`` subscribe to
  the user-data stream over the WebSocket API (``userDataStream.subscribe.signature``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connectors.paper.server import PaperVenueHandle

_REST_APIS = (
    "public",
    "private",
    "v1",
    "sapi",
    "sapiV2",
    "sapiV3",
    "sapiV4",
    "fapiPublic",
    "fapiPublicV2",
    "fapiPublicV3",
    "fapiPrivate",
    "fapiPrivateV2",
    "fapiPrivateV3",
    "fapiData",
    "dapiPublic",
    "dapiPrivate",
    "dapiPrivateV2",
    "dapiData",
    "eapiPublic",
    "eapiPrivate",
    "papi",
    "papiV2",
)


def ccxt_config(
    venue: PaperVenueHandle | tuple[str, str, str, str],
    **overrides: Any,
) -> dict[str, Any]:
    """ccxt ``binance`` config for a paper venue.

    ``venue`` is a :class:`PaperVenueHandle` or ``(rest_url, ws_url, api_key, secret)`` where
    ``rest_url`` is ``http://127.0.0.1:PORT/api/v3`` and ``ws_url`` is ``ws://127.0.0.1:PORT``.
    Keyword ``overrides`` are merged on top (``options`` is merged one level deep), e.g.
    ``timeout=2000`` or ``options={"recvWindow": 5000}``.
    """
    if isinstance(venue, tuple):
        rest_url, ws_url, api_key, secret = venue
    else:
        rest_url, ws_url, api_key, secret = venue.rest_url, venue.ws_url, venue.api_key, venue.secret
    rest_url = rest_url.rstrip("/")
    ws_url = ws_url.rstrip("/")
    # Every REST family at the venue: only /api/v3 exists there, the rest answer 404.
    root = rest_url[: -len("/api/v3")] if rest_url.endswith("/api/v3") else rest_url
    api: dict[str, Any] = {name: f"{root}/{name}" for name in _REST_APIS}
    api["public"] = rest_url
    api["private"] = rest_url
    api["v1"] = f"{root}/api/v1"
    api["ws"] = {
        "spot": f"{ws_url}/stream",
        "margin": f"{ws_url}/stream",
        "linear": f"{ws_url}/fstream/ws",
        "inverse": f"{ws_url}/dstream/ws",
        "ws-api": {
            "spot": f"{ws_url}/ws-api/v3",
            "linear": f"{ws_url}/ws-fapi/v1",
            "inverse": f"{ws_url}/ws-dapi/v1",
        },
    }
    options: dict[str, Any] = {
        "defaultType": "spot",
        "fetchMarkets": {"types": ["spot"]},
        "fetchCurrencies": False,
        "fetchMargins": False,
        "warnOnFetchOpenOrdersWithoutSymbol": False,
        "adjustForTimeDifference": False,
    }
    config: dict[str, Any] = {
        "apiKey": api_key,
        "secret": secret,
        "enableRateLimit": True,
        "urls": {"api": api, "test": api},
        "options": options,
    }
    extra_options = overrides.pop("options", None)
    if extra_options:
        options.update(extra_options)
    config.update(overrides)
    return config
