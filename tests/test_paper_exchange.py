"""The paper exchange as a whole: seeded, reproducible flow and venue wiring."""

from __future__ import annotations

from typing import Any

from connectors.paper import PaperExchange, Scenario


def flow(exchange: PaperExchange) -> dict[str, Any]:
    """What a seed decides: every venue's books and the trades printed, without timestamps."""
    out: dict[str, Any] = {}
    for name, venue in exchange.venues.items():
        for symbol in venue.engine.symbols:
            trades = [(t.price, t.qty, t.taker_side) for t in venue.engine.recent_trades(symbol)]
            out[f"{name}/{symbol}"] = (venue.engine.depth(symbol, 1000), trades)
    return out


def run(scenario: Scenario, seed: int, seconds: float) -> dict[str, Any]:
    exchange = PaperExchange(scenario, seed=seed)
    exchange.market.seed_books()
    assert exchange.advance(seconds) == round(seconds / exchange.step_interval)
    return flow(exchange)


def test_same_seed_gives_the_same_flow(paper_scenario: Scenario) -> None:
    first = run(paper_scenario, seed=5, seconds=20)
    assert first == run(paper_scenario, seed=5, seconds=20)
    assert any(trades for _, trades in first.values())  # something actually traded


def test_another_seed_gives_another_flow(paper_scenario: Scenario) -> None:
    assert run(paper_scenario, seed=5, seconds=20) != run(paper_scenario, seed=6, seconds=20)


def test_the_demo_account_of_each_venue_is_funded_and_listed(paper_exchange: PaperExchange) -> None:
    alpha = paper_exchange.venues["alpha"]
    assert alpha.account == "demo" and alpha.api_key == "test-alpha-key"
    assert alpha.engine.balances("demo")["USDT"].free == 20000
    assert alpha.rest_url.startswith("http://127.0.0.1:") and alpha.rest_url.endswith("/api/v3")
    assert alpha.ws_url == alpha.rest_url.replace("http://", "ws://").removesuffix("/api/v3")
    assert set(paper_exchange.venues["beta"].engine.symbols) == {"BERA/USDT"}
