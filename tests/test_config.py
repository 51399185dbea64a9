"""Strategy YAML: validation messages, decimals as strings or numbers, templates, builder, CLI."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from daemon.commands.config import main as config_main
from daemon.config_loader import ConfigError, dump_config, load_config, parse_config
from strategies.config import (
    TEMPLATES,
    InventoryPriceMethod,
    SidesMode,
    StrategyConfig,
    StrategyConfigBuilder,
)

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "config" / "bera-usdt.yaml"

MINIMAL = """
instance: t1
base: BERA
quotes: [USDT]
venues:
  alpha: {symbols: [BERA/USDT]}
inventory: {target: 1000, max_deviation: 500}
tob_lines:
  - {id: tob1, symbol: BERA/USDT, hourly_quantity: 50, max_zone_bps: 30}
passive_lines:
  - {id: pas1, symbol: BERA/USDT, mid_spread_bps: 15, max_spread_bps: 60, quantity: 25}
"""


def problems(text: str, source: str = "cfg.yaml") -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source)
    return info.value.problems


def test_demo_config_is_valid_and_matches_the_paper_demo_venues() -> None:
    config = load_config(DEMO)
    assert set(config.venues) == {"alpha", "beta", "gamma"}
    assert config.venues["alpha"].urls.rest == "http://127.0.0.1:18401/api/v3"
    assert config.venues["gamma"].urls.ws == "ws://127.0.0.1:18403"
    assert config.venues["beta"].credentials.api_key_env == "STACKMM_BETA_API_KEY"
    assert config.inventory.target == Decimal("24000")
    assert [line.id for line in config.lines] == ["tob", "ladder", "ladbtc"]
    assert config.line_venues(config.tob_lines[0]) == ["alpha", "beta", "gamma"]


def test_decimals_may_be_strings_or_numbers_and_stay_exact() -> None:
    as_numbers = parse_config(MINIMAL)
    as_strings = parse_config(MINIMAL.replace("hourly_quantity: 50", 'hourly_quantity: "50"'))
    assert as_numbers == as_strings
    floats = parse_config(MINIMAL.replace("quantity: 25", "quantity: 0.1"))
    assert floats.passive_lines[0].quantity == Decimal("0.1")  # not 0.1000000000000000055511151231257827


def test_defaults_fill_unset_keys() -> None:
    config = parse_config(MINIMAL)
    assert config.tob_lines[0].sides is SidesMode.BOTH
    assert config.tob_lines[0].timeout_s == 30.0
    assert config.inventory.price_method is InventoryPriceMethod.ACCOUNTING
    assert config.volume.periods == [300.0, 900.0, 1800.0]


def test_a_bad_decimal_names_file_key_path_and_value() -> None:
    bad = MINIMAL.replace("hourly_quantity: 50", "hourly_quantity: abc")
    assert problems(bad, "config/bera-usdt.yaml") == [
        "config/bera-usdt.yaml: tob_lines[0].hourly_quantity: expected a decimal number, got 'abc'"
    ]


def test_every_problem_gets_its_own_line() -> None:
    bad = MINIMAL.replace("max_zone_bps: 30", "max_zone_bps: 30, colour: red").replace(
        "{target: 1000, max_deviation: 500}", "{target: 1000, price_method: fifo}"
    )
    found = problems(bad)
    assert "cfg.yaml: inventory.max_deviation: required key is missing" in found
    assert (
        "cfg.yaml: inventory.price_method: expected 'manual', 'accounting' or 'mark_to_market', got 'fifo'"
        in found
    )
    assert "cfg.yaml: tob_lines[0].colour: unknown key" in found
    assert len(found) == 3


def test_cross_references_are_checked_with_their_key_paths() -> None:
    bad = MINIMAL.replace("{id: pas1, symbol: BERA/USDT,", "{id: tob1, symbol: BERA/USDT, venues: [delta],")
    found = problems(bad)
    assert "cfg.yaml: passive_lines[0].id: 'tob1' already used by tob_lines[0]" in found
    assert "cfg.yaml: passive_lines[0].venues: unknown venue 'delta' (venues: alpha)" in found


def test_section_rules_name_the_key_inside_the_section() -> None:
    bad = MINIMAL.replace(
        "{target: 1000, max_deviation: 500}", "{target: 1, max_deviation: 5, price_method: manual}"
    )
    assert problems(bad) == ["cfg.yaml: inventory.manual_price: required when price_method is 'manual'"]
    zone = MINIMAL.replace("max_zone_bps: 30", "min_zone_bps: 30, max_zone_bps: 10")
    assert problems(zone) == ["cfg.yaml: tob_lines[0].min_zone_bps: expected below max_zone_bps"]


def test_yaml_syntax_errors_and_unreadable_files_are_config_errors(tmp_path: Path) -> None:
    assert problems("instance: [unclosed\n")[0].startswith("cfg.yaml: line 2, column 1: invalid YAML")
    assert problems("- just a list\n") == ["cfg.yaml: expected a mapping of keys at the top level, got list"]
    with pytest.raises(ConfigError, match=r"missing\.yaml: cannot read"):
        load_config(tmp_path / "missing.yaml")


def test_names_and_symbols_are_checked_in_words() -> None:
    bad = MINIMAL.replace("symbols: [BERA/USDT]", "symbols: [BERAUSDT]")
    assert problems(bad) == [
        "cfg.yaml: venues.alpha.symbols[0]: expected a ccxt unified symbol like 'BERA/USDT', got 'BERAUSDT'"
    ]


def test_periods_accept_units_or_seconds() -> None:
    config = parse_config(MINIMAL + "volume: {periods: [30s, 5min, 1h]}\n")
    assert config.volume.periods == [30.0, 300.0, 3600.0]
    assert problems(MINIMAL + "volume: {periods: [5min, 1min]}\n") == [
        "cfg.yaml: volume.periods: expected distinct periods from shortest to longest"
    ]
    assert problems(MINIMAL + "volume: {periods: [5 fortnights, 1h]}\n") == [
        "cfg.yaml: volume.periods[0]: expected a period like '5min', '1h', '30s' or seconds, "
        "got '5 fortnights'"
    ]


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_templates_are_valid_and_round_trip_through_yaml(name: str) -> None:
    config = TEMPLATES[name]()
    text = dump_config(config, header=f"template {name}")
    assert text.startswith("# template")
    assert parse_config(text) == config


def test_templates_differ_the_way_their_names_say() -> None:
    cons = TEMPLATES["conservative"]()
    aggr = TEMPLATES["aggressive"]()
    assert aggr.passive_lines[0].mid_spread_bps < cons.passive_lines[0].mid_spread_bps
    assert aggr.tob_lines[0].hourly_quantity > cons.tob_lines[0].hourly_quantity
    assert aggr.tob_lines[0].timeout_s < cons.tob_lines[0].timeout_s


def test_builder_is_equivalent_to_the_yaml() -> None:
    built = (
        StrategyConfigBuilder("t1")
        .set_basic_info("BERA", ["USDT"])
        .add_venue("alpha", symbols=["BERA/USDT"])
        .set_inventory(target=1000, max_deviation=500)
        .add_tob_line("tob1", "BERA/USDT", hourly_quantity="50", max_zone_bps=30)
        .add_passive_line("pas1", "BERA/USDT", mid_spread_bps=15, max_spread_bps=60, quantity=25)
        .build()
    )
    assert built == parse_config(MINIMAL)
    assert isinstance(built, StrategyConfig)


def test_the_demo_config_round_trips(tmp_path: Path) -> None:
    config = load_config(DEMO)
    out = tmp_path / "again.yaml"
    out.write_text(dump_config(config))
    assert load_config(out) == config
    assert "secret" not in yaml.safe_load(out.read_text())["venues"]["alpha"]


def test_cli_validate_reports_ok_or_one_line_per_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert config_main(["validate", str(DEMO)]) == 0
    assert "ok (instance bera-demo, 3 venues, 1 TOB + 2 passive = 3 lines)" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(MINIMAL.replace("quantity: 25", "quantity: -1"))
    assert config_main(["validate", str(bad)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"{bad}: passive_lines[0].quantity: expected a value above 0, got -1"]


def test_cli_template_prints_or_writes_a_valid_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert config_main(["template", "conservative"]) == 0
    printed = capsys.readouterr().out
    assert parse_config(printed) == TEMPLATES["conservative"]()
    out = tmp_path / "aggr.yaml"
    assert config_main(["template", "aggressive", "--output", str(out)]) == 0
    assert load_config(out) == TEMPLATES["aggressive"]()
