"""The paper venue: local Binance Spot look-alikes over a matching engine and a simulated market.

Public API::

    px = PaperExchange.from_scenario(Path("config/paper/test.yaml"), seed=1)
    async with px:
        venue = px.venues["alpha"]            # PaperVenueHandle: rest_url, ws_url, keys, engine, faults
        client = ccxt.async_support.binance(ccxt_config(venue))
"""

from connectors.paper.auth import ApiCredential, BinanceError
from connectors.paper.ccxt_config import ccxt_config
from connectors.paper.faults import FaultKnobs, FaultSettings
from connectors.paper.scenario import Scenario, ScenarioError, load_scenario
from connectors.paper.server import PaperExchange, PaperVenueHandle

__all__ = [
    "ApiCredential",
    "BinanceError",
    "FaultKnobs",
    "FaultSettings",
    "PaperExchange",
    "PaperVenueHandle",
    "Scenario",
    "ScenarioError",
    "ccxt_config",
    "load_scenario",
]
