"""Scenario files: the demo world, the test world, and errors that name the file and key."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from connectors.paper import ScenarioError, ccxt_config, load_scenario
from tests.fixtures.paper import PAPER_DEMO_SCENARIO, PAPER_TEST_SCENARIO


def test_demo_scenario_has_three_funded_venues_quoting_the_four_markets() -> None:
    scenario = load_scenario(PAPER_DEMO_SCENARIO)
    assert [v.name for v in scenario.venues] == ["alpha", "beta", "gamma"]
    for venue in scenario.venues:
        symbols = {m.symbol for m in scenario.venue_markets(venue)}
        assert symbols == {"BERA/USDT", "BERA/BTC", "BTC/USDT", "ETH/USDT"}
        demo = venue.accounts[0]
        assert (demo.api_key, demo.secret) == (f"demo-{venue.name}-key", f"demo-{venue.name}-secret")
        assert demo.balances == {
            "USDT": Decimal(20000),
            "BERA": Decimal(8000),
            "BTC": Decimal("0.2"),
            "ETH": Decimal(3),
        }


def test_test_scenario_loads() -> None:
    scenario = load_scenario(PAPER_TEST_SCENARIO)
    assert scenario.venues[0].streams.depth_fast_interval_ms < 100


def test_errors_name_the_file_and_the_key(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    text = PAPER_TEST_SCENARIO.read_text().replace("api_key: test-beta-key", "api_kee: test-beta-key")
    path.write_text(text)
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    message = str(err.value)
    assert f"{path}: venues[1].accounts[0].api_key: Field required" in message
    assert f"{path}: venues[1].accounts[0].api_kee: Extra inputs are not permitted" in message


def test_unknown_market_on_a_venue_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "market.yaml"
    path.write_text(PAPER_TEST_SCENARIO.read_text().replace("symbols: [BERA/USDT]", "symbols: [DOGE/USDT]"))
    with pytest.raises(ScenarioError, match="lists DOGE/USDT, which is not in markets"):
        load_scenario(path)


def test_unparseable_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("venues: [\n")
    with pytest.raises(ScenarioError, match=str(path)):
        load_scenario(path)


def test_ccxt_config_points_every_api_at_the_venue() -> None:
    config = ccxt_config(("http://127.0.0.1:9999/api/v3", "ws://127.0.0.1:9999", "k", "s"), timeout=1234)
    api = config["urls"]["api"]
    assert api["public"] == api["private"] == "http://127.0.0.1:9999/api/v3"
    assert all(url.startswith("http://127.0.0.1:9999/") for name, url in api.items() if name != "ws")
    assert "/stream" in api["ws"]["spot"]
    assert api["ws"]["ws-api"]["spot"] == "ws://127.0.0.1:9999/ws-api/v3"
    assert config["options"]["fetchMarkets"] == {"types": ["spot"]}
    assert config["options"]["fetchCurrencies"] is False
    assert (config["apiKey"], config["secret"], config["timeout"]) == ("k", "s", 1234)
