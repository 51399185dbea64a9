"""`stackmm simulate as2008`: Avellaneda & Stoikov (2008) §3.3 reproduced with the project's model code."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from daemon.commands import simulate as simulate_command
from strategies.models.base import AvellanedaStoikovConfig, CarteaJaimungalConfig
from strategies.models.cartea_jaimungal import quote as cjp_quote
from strategies.simulation import MarketSpec, ModelPolicy, simulate
from strategies.simulation.as2008 import PAPER_TABLES, InventoryStrategy, run

RUNS = 200


@pytest.mark.parametrize("gamma", [0.1, 0.01, 0.5])
def test_inventory_strategy_trades_profit_for_much_less_risk(gamma: float) -> None:
    inventory, symmetric = run(gamma, RUNS, seed=11)
    assert inventory.profit_std < symmetric.profit_std
    assert inventory.q_std < 0.7 * symmetric.q_std
    assert inventory.profit_mean <= symmetric.profit_mean + 3 * symmetric.profit_std / math.sqrt(RUNS)
    assert inventory.spread_mean == pytest.approx(symmetric.spread_mean)


@pytest.mark.parametrize("gamma", [0.1, 0.01])
def test_figures_match_the_paper_within_monte_carlo_error(gamma: float) -> None:
    for result in run(gamma, RUNS, seed=11):
        paper = PAPER_TABLES[gamma][result.name]
        se_mean = result.profit_std / math.sqrt(RUNS)
        assert abs(result.profit_mean - paper.profit) < 4 * se_mean + 0.02 * paper.profit
        # std estimates: relative standard error ≈ 1/sqrt(2n) = 5% at 200 runs
        assert result.profit_std == pytest.approx(paper.std_profit, rel=0.2)
        assert result.q_std == pytest.approx(paper.std_final_q, rel=0.25)
        assert abs(result.q_mean - paper.final_q) < 4 * result.q_std / math.sqrt(RUNS)


def test_higher_risk_aversion_holds_less_inventory() -> None:
    stds = [run(gamma, RUNS, seed=3)[0].q_std for gamma in (0.01, 0.1, 0.5)]
    assert stds[0] > stds[1] > stds[2]


def test_constant_spread_reading_quotes_the_table_spread() -> None:
    inventory, symmetric = run(0.5, RUNS, seed=11, spread="constant")
    assert inventory.spread_mean == pytest.approx(4 * math.log(1 + 0.5 / 1.5))
    assert symmetric.spread_mean == pytest.approx(1.15, abs=0.005)
    paper = PAPER_TABLES[0.5]["symmetric"]
    assert symmetric.profit_mean == pytest.approx(paper.profit, rel=0.05)
    assert symmetric.q_std == pytest.approx(paper.std_final_q, rel=0.2)


def test_configured_as2008_model_runs_the_same_code_as_the_paper_strategy() -> None:
    market = MarketSpec()
    config = AvellanedaStoikovConfig(gamma=0.1, horizon="rolling", horizon_s=1.0)
    paper, configured = simulate(
        market, [InventoryStrategy(0.1, market), ModelPolicy("cfg", config, market)], 50, 5
    )
    np.testing.assert_allclose(configured.profits, paper.profits, rtol=1e-12)
    np.testing.assert_array_equal(configured.final_q, paper.final_q)


def test_tabulated_models_match_their_live_quotes() -> None:
    market = MarketSpec()
    config = CarteaJaimungalConfig(
        running_penalty=0.2, terminal_penalty=0.5, horizon_s=1.0, q_max=4, q_min=-4
    )
    policy = ModelPolicy("cjp", config, market)
    q = np.array([-5.0, -4.0, -1.0, 0.0, 2.5, 4.0])
    bids, asks = policy.depths(100, 0.5, np.full(len(q), 100.0), q)
    for i, qi in enumerate(q):
        live = cjp_quote(config.model_copy(update={"horizon_s": 0.5}), 100.0, float(qi), market.A, market.k)
        assert (bids[i], asks[i]) == pytest.approx((live.bid_depth, live.ask_depth), rel=1e-9)


def test_cli_prints_the_papers_columns_beside_ours(capsys: pytest.CaptureFixture[str]) -> None:
    assert simulate_command.main(["as2008", "--gamma", "0.1", "--runs", "100", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "std(profit)" in out and "std(final q)" in out and "paper:" in out
    assert "62.94" in out and "67.21" in out


def test_cli_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert simulate_command.main(["as2008", "--gamma", "0.5", "--runs", "50", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report[0]["gamma"] == 0.5
    assert [r["strategy"] for r in report[0]["results"]] == ["inventory", "symmetric"]
    assert report[0]["paper"]["inventory"]["profit"] == 33.92


def test_compare_runs_every_configured_model_on_the_same_market(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = tmp_path / "models.yaml"
    models.write_text(
        "models:\n"
        "  as: {model: as2008, gamma: 0.1, horizon: session, session_end_utc: '16:00'}\n"
        "  as_inf: {model: as2008, gamma: 0.1, horizon: infinite, q_max: 10}\n"
        "  hs: {model: ho_stoll, gamma: 0.1, horizon_s: 0.5}\n"
        "  glft: {model: glft, gamma: 0.1}\n"
        "  glft_exact: {model: glft, gamma: 0.1, method: exact, q_max: 15, horizon_s: 1.0}\n"
        "  cjp: {model: cjp, running_penalty: 0.2, terminal_penalty: 0.5, horizon_s: 1.0,"
        " q_max: 15, q_min: -15}\n"
    )
    assert simulate_command.main(["compare", str(models), "--runs", "40", "--json"]) == 0
    results = {r["strategy"]: r for r in json.loads(capsys.readouterr().out)["results"]}
    assert set(results) == {"as", "as_inf", "hs", "glft", "glft_exact", "cjp"}
    for row in results.values():
        assert math.isfinite(row["profit"]) and row["fills"] > 10


def test_compare_reports_a_bad_pricing_block(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  x: {model: glft}\n")
    assert simulate_command.main(["compare", str(bad)]) == 2
    assert "x: glft.gamma: Field required" in capsys.readouterr().err
