"""The stacked strategy core: mode fusion, event-driven re-quoting, health, pause, inventory lean, state."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from random import Random
from typing import Any

from strategies.book import L2Book
from strategies.clock import ManualClock
from strategies.config import StrategyConfig, StrategyConfigBuilder
from strategies.models import quote as pricing_quote
from strategies.stacked import StackedStrategy
from strategies.types import Fill, MarketRules, QuoteTarget, Side, SyncState, TargetSet, Trade

D = Decimal
VENUES = ("alpha", "beta", "gamma")
RULES = {
    (v, "BERA/USDT"): MarketRules("BERA/USDT", D("0.0001"), D("0.01"), D("0.01"), D("5")) for v in VENUES
}


def config(
    reference: dict[str, Any] | None = None,
    tob: dict[str, Any] | None = None,
    passive: dict[str, Any] | None = None,
    inventory: dict[str, Any] | None = None,
) -> StrategyConfig:
    builder = StrategyConfigBuilder("test").set_basic_info("BERA", ["USDT"])
    for venue in VENUES:
        builder.add_venue(venue, symbols=["BERA/USDT"])
    builder.set_inventory(**{"target": "12000", "max_deviation": "6000", **(inventory or {})})
    builder.set_reference(**(reference or {"kind": "aggregated"}))
    builder.add_tob_line(
        "tob",
        "BERA/USDT",
        **{"hourly_quantity": "2000", "min_zone_bps": 2, "max_zone_bps": 40, "timeout_s": 30, **(tob or {})},
    )
    builder.add_passive_line(
        "pas",
        "BERA/USDT",
        **{
            "mid_spread_bps": 20,
            "min_spread_bps": 10,
            "max_spread_bps": 60,
            "quantity": "100",
            "levels": 2,
            "level_step_bps": 10,
            "timeout_s": 120,
            **(passive or {}),
        },
    )
    return builder.build()


class World:
    """A strategy over three venues with books the test moves by hand."""

    def __init__(self, cfg: StrategyConfig | None = None, balances: str = "4000") -> None:
        self.clock = ManualClock()
        self.strategy = StackedStrategy(cfg or config(), RULES, self.clock, Random(3))
        for venue in VENUES:
            self.strategy.on_balances(venue, {"BERA": D(balances), "USDT": D("10000")})
        self.books = {v: L2Book(v, "BERA/USDT") for v in VENUES}
        self.sets: dict[str, TargetSet] = {}

    def set_book(self, venue: str, bid: str, ask: str, extra_bid: str | None = None) -> list[TargetSet]:
        book = self.books[venue]
        book.health.state = SyncState.IN_SYNC
        bids = [[bid, "100"]] + ([[extra_bid, "50"]] if extra_bid else [])
        book.apply_snapshot(bids, [[ask, "100"]], book.seq + 1, self.clock.time())
        return self.collect(self.strategy.on_book(book))

    def collect(self, sets: list[TargetSet]) -> list[TargetSet]:
        for s in sets:
            self.sets[s.venue] = s
        return sets

    def start(self) -> None:
        for venue in VENUES:
            self.set_book(venue, "2.4990", "2.5010")

    def quotes(self, venue: str, line: str | None = None, side: Side | None = None) -> list[QuoteTarget]:
        return [
            t
            for t in self.sets[venue].targets
            if (line is None or t.line_id == line) and (side is None or t.side is side)
        ]


def test_tob_and_passive_lines_share_one_target_set_per_venue() -> None:
    world = World()
    world.start()
    assert set(world.sets) == set(VENUES)
    for venue in VENUES:
        targets = world.sets[venue].targets
        assert all(t.venue == venue for t in targets)
        assert {(t.line_id, t.side, t.level) for t in targets} == {
            ("tob", Side.BUY, 0),
            ("tob", Side.SELL, 0),
            ("pas", Side.BUY, 0),
            ("pas", Side.BUY, 1),
            ("pas", Side.SELL, 0),
            ("pas", Side.SELL, 1),
        }
        assert [t.price for t in world.quotes(venue, "tob")] == [D("2.4991"), D("2.5009")]
        assert {t.price for t in world.quotes(venue, "pas", Side.BUY)} == {D("2.4950"), D("2.4925")}


def test_an_update_that_changes_no_quote_emits_nothing() -> None:
    world = World()
    world.start()
    # a deeper level changes: same top, same reference, same targets
    assert world.set_book("alpha", "2.4990", "2.5010", extra_bid="2.4900") == []


def test_only_the_venue_whose_top_moved_requotes_when_the_reference_holds() -> None:
    world = World(config(reference={"kind": "single", "venues": ["gamma"]}))
    world.start()
    changed = world.set_book("alpha", "2.4993", "2.5010")
    assert [s.venue for s in changed] == ["alpha"]
    assert world.quotes("alpha", "tob", Side.BUY)[0].price == D("2.4994")


def test_a_reference_move_requotes_every_venue_ladder() -> None:
    world = World(config(reference={"kind": "single", "venues": ["gamma"]}))
    world.start()
    changed = world.set_book("gamma", "2.5090", "2.5110")  # reference 2.5 -> 2.51
    assert sorted(s.venue for s in changed) == list(VENUES)
    # 2.51 * (1 - 0.002) = 2.50498 -> 2.5049 on gamma; on alpha that bid would take its 2.5010 ask
    assert world.quotes("gamma", "pas", Side.BUY)[0].price == D("2.5049")
    assert [t.level for t in world.quotes("alpha", "pas", Side.BUY)] == []
    assert world.quotes("alpha", "pas", Side.SELL)[0].price == D("2.5151")  # 2.51 * 1.002 = 2.51502


def test_a_book_out_of_sync_pulls_that_venues_quotes() -> None:
    world = World(config(reference={"kind": "single", "venues": ["gamma"]}))
    world.start()
    book = world.books["beta"]
    book.health.state = SyncState.RESYNCING
    changed = world.collect(world.strategy.on_book(book))
    assert [(s.venue, s.targets) for s in changed] == [("beta", [])]
    assert world.quotes("alpha")  # other venues keep quoting


def test_a_silent_book_goes_stale_and_quotes_nothing_on_the_next_requote() -> None:
    world = World(config(reference={"kind": "single", "venues": ["gamma"]}))
    world.start()
    started = world.clock.time()
    world.clock.advance(4.0)
    world.set_book("gamma", "2.4990", "2.5010")  # gamma stays fresh; alpha and beta fall silent
    wake = world.strategy.next_wakeup()
    assert wake is not None and started + 5.0 < wake < started + 5.01  # stale_after_s = 5
    world.clock.set(wake)
    world.collect(world.strategy.on_timer())
    assert world.sets["alpha"].targets == []
    assert world.sets["gamma"].targets


def test_disabled_lines_and_sides_are_respected() -> None:
    cfg = config(tob={"sides": "bid"}, passive={"enabled": False})
    world = World(cfg)
    world.start()
    assert {(t.line_id, t.side) for t in world.sets["alpha"].targets} == {("tob", Side.BUY)}
    assert world.strategy.state().lines["pas"].enabled is False


def test_pause_empties_every_venue_and_resume_restores_the_quotes() -> None:
    world = World()
    world.start()
    before = {v: list(world.sets[v].targets) for v in VENUES}
    paused = world.collect(world.strategy.set_paused(True))
    assert sorted(s.venue for s in paused) == list(VENUES)
    assert all(s.targets == [] for s in paused)
    assert world.set_book("alpha", "2.4995", "2.5010") == []  # no quoting while paused
    world.set_book("alpha", "2.4990", "2.5010")
    resumed = world.collect(world.strategy.set_paused(False))
    assert sorted(s.venue for s in resumed) == list(VENUES)
    assert {v: world.sets[v].targets for v in VENUES} == before


def test_inventory_long_then_short_skews_the_quotes_the_coefficient_way() -> None:
    neutral = World()
    neutral.start()
    base_bid = neutral.quotes("alpha", "pas", Side.BUY)[0]
    base_ask = neutral.quotes("alpha", "pas", Side.SELL)[0]

    long = World(balances="5500")  # 16500 vs 12000: c = +0.375
    long.start()
    bid = long.quotes("alpha", "pas", Side.BUY)[0]
    ask = long.quotes("alpha", "pas", Side.SELL)[0]
    assert bid.price < base_bid.price and ask.price < base_ask.price  # bid further, ask closer
    assert bid.size < base_bid.size

    short = World(balances="2500")  # 7500 vs 12000: c = -0.375
    short.start()
    bid = short.quotes("alpha", "pas", Side.BUY)[0]
    ask = short.quotes("alpha", "pas", Side.SELL)[0]
    assert bid.price > base_bid.price and ask.price > base_ask.price
    assert ask.size < base_ask.size


def test_a_fill_updates_inventory_and_requotes_every_venue() -> None:
    world = World()
    world.start()
    before = world.quotes("beta", "pas", Side.BUY)[0].price
    fill = Fill(
        "alpha", "BERA/USDT", Side.BUY, D("2.4991"), D("3000"), D("3"), "BERA", "t1", "c1", "tob", 0.0
    )
    changed = world.collect(world.strategy.on_fill(fill))
    assert sorted(s.venue for s in changed) == list(VENUES)
    assert world.quotes("beta", "pas", Side.BUY)[0].price < before
    state = world.strategy.state()
    assert state.lines["tob"].filled == 1
    assert state.lines["tob"].filled_qty == D("3000")
    assert state.inventory.base_state.position == D("14997")
    assert world.strategy.on_fill(fill) == []  # replayed fill: nothing happens


def test_beyond_max_deviation_no_venue_bids() -> None:
    world = World(balances="6000")  # 18000 = target + 6000
    world.start()
    for venue in VENUES:
        assert world.quotes(venue, side=Side.BUY) == []
        assert world.quotes(venue, side=Side.SELL)


def test_our_lines_never_cross_each_other_the_growing_side_yields() -> None:
    # TOB bid may sit at the reference (zone min 0) and the passive ask at it too (spread 0
    # when fully long): the bid of the long inventory yields.
    cfg = config(
        reference={"kind": "single", "venues": ["gamma"]},
        tob={"min_zone_bps": 0},
        passive={"min_spread_bps": 0, "levels": 1},
        inventory={"target": "6000", "max_deviation": "10000", "skew": 1.0},
    )
    world = World(cfg, balances="4000")  # 12000 vs 6000: c = +1
    world.set_book("gamma", "2.4999", "2.5001")  # reference 2.5000
    world.set_book("alpha", "2.4999", "2.5010")
    bids = [t.price for t in world.quotes("alpha", side=Side.BUY)]
    asks = [t.price for t in world.quotes("alpha", side=Side.SELL)]
    assert min(asks) == D("2.5000")
    assert all(b < min(asks) for b in bids)


def test_own_resting_ask_caps_the_tob_bid() -> None:
    world = World(config(reference={"kind": "single", "venues": ["gamma"]}))
    world.start()
    world.strategy.on_open_orders("alpha", [("BERA/USDT", Side.SELL, D("2.4991"))])
    world.set_book("alpha", "2.4990", "2.5011")
    assert world.quotes("alpha", "tob", Side.BUY)[0].price == D("2.4990")


def test_passive_timeout_is_a_wakeup_that_redraws_sizes() -> None:
    world = World(config(passive={"randomization_factor": 0.05}))
    world.start()
    start = world.clock.time()
    sizes = [t.size for t in world.quotes("alpha", "pas")]
    assert world.strategy.on_timer() == []  # nothing due yet
    wake = world.strategy.next_wakeup()
    while wake is not None and wake < start + 120:  # books stay fresh (else their staleness is due)
        world.clock.advance(4.0)
        for venue in VENUES:
            assert world.set_book(venue, "2.4990", "2.5010") == []  # same book: nothing changes
        wake = world.strategy.next_wakeup()
    assert wake == start + 120
    world.clock.set(wake)
    changed = world.collect(world.strategy.on_timer())
    assert sorted(s.venue for s in changed) == list(VENUES)
    assert [t.size for t in world.quotes("alpha", "pas")] != sizes


def test_busier_market_applies_the_lines_volume_choice() -> None:
    cfg = config(passive={"volume_spread": "tighten", "levels": 1, "mid_spread_bps": 40})
    world = World(cfg)
    world.start()
    wide = world.quotes("alpha", "pas", Side.BUY)[0].price
    strategy = world.strategy
    # 10 minutes of quiet trading, then a burst: the 1-minute rate far above the 5-minute one
    start = world.clock.time()
    for i in range(60):
        strategy.on_trade(Trade("alpha", "BERA/USDT", 2.5, 1.0, Side.BUY, start + i * 10))
    world.clock.advance(900)
    now = world.clock.time()
    for i in range(100):
        strategy.on_trade(Trade("alpha", "BERA/USDT", 2.5, 10.0, Side.BUY, now - 30 + i * 0.3))
    for venue in VENUES:
        world.set_book(venue, "2.4990", "2.5010")
    assert strategy.state().volume_coefficients["alpha"] > 1.0
    assert world.quotes("alpha", "pas", Side.BUY)[0].price > wide  # tighter bid


def test_state_maps_flat_for_redis() -> None:
    world = World()
    world.start()
    world.strategy.on_order_event("tob", "placed")
    world.strategy.on_order_event("tob", "cancelled")
    state = world.strategy.state()
    line = state.lines["tob"].to_redis()
    assert line["targets"] == "6"
    assert (line["placed"], line["cancelled"]) == ("1", "1")
    assert all(isinstance(v, str) for v in line.values())
    coefficients = state.coefficients_to_redis()
    assert set(coefficients) >= {"alpha", "beta", "gamma", "inventory"}
    assert float(coefficients["inventory"]) == 0.0
    assert state.inventory.to_redis()["BERA"]
    assert world.strategy.books_needed == [(v, "BERA/USDT") for v in VENUES]


def test_a_passive_line_can_price_with_a_model_and_falls_back_until_it_has_inputs() -> None:
    pinned = {"model": "glft", "gamma": 0.05, "sigma": 0.001, "A": 1.0, "k": 200, "lot_size": 100}
    cfg = config(passive={"pricing": pinned, "min_spread_bps": 1, "max_spread_bps": 100, "levels": 1})
    world = World(cfg, balances="5500")  # 4500 BERA long
    world.start()
    expected = pricing_quote(cfg.passive_lines[0].pricing, 2.5, 4500.0, None, 0.0, None)  # type: ignore[arg-type]
    assert expected is not None and expected.bid_depth > expected.ask_depth  # long: the model leans
    bid = world.quotes("alpha", "pas", Side.BUY)[0].price
    ask = world.quotes("alpha", "pas", Side.SELL)[0].price
    assert bid == D(math.floor((2.5 - expected.bid_depth) / 1e-4)) * D("0.0001")
    assert ask == D(math.ceil((2.5 + expected.ask_depth) / 1e-4)) * D("0.0001")
    assert world.strategy.state().lines["pas"].pricing == "glft"

    # sigma, A and k left to a calibration that has seen nothing yet: the static spread quotes
    waiting = {"model": "glft", "gamma": 0.05, "lot_size": 100}
    calibration = {"depth_step": 0.0001}
    world = World(config(passive={"pricing": waiting, "calibration": calibration, "levels": 1}))
    world.start()
    assert world.quotes("alpha", "pas", Side.BUY)[0].price == D("2.4950")  # mid_spread_bps 20
    assert world.strategy.state().lines["pas"].pricing.startswith("glft: waiting for sigma, A, k")


@dataclass
class Resting:
    """Shaped like the order manager's records: what ``on_open_orders`` reads."""

    symbol: str
    side: Side
    price: D
    remaining: D
    line_id: str


def test_open_orders_from_order_records_count_per_line_and_protect() -> None:
    world = World(config(reference={"kind": "single", "venues": ["gamma"]}))
    world.start()
    world.strategy.on_open_orders(
        "alpha",
        [
            Resting("BERA/USDT", Side.SELL, D("2.4991"), D("5"), "pas"),
            Resting("BERA/USDT", Side.BUY, D("2.4950"), D("100"), "pas"),
        ],
    )
    world.strategy.on_open_orders("beta", [Resting("BERA/USDT", Side.BUY, D("2.4991"), D("16"), "tob")])
    state = world.strategy.state()
    assert (state.lines["pas"].active_orders, state.lines["tob"].active_orders) == (2, 1)
    world.set_book("alpha", "2.4990", "2.5011")
    # best bid + tick would be 2.4991: our own resting ask there caps the bid a tick below
    assert world.quotes("alpha", "tob", Side.BUY)[0].price == D("2.4990")
    world.strategy.on_open_orders("alpha", [])
    world.set_book("alpha", "2.4990", "2.5010")
    assert world.quotes("alpha", "tob", Side.BUY)[0].price == D("2.4991")


def test_a_risk_spread_factor_widens_passive_spreads_beyond_their_max_and_tob_zones() -> None:
    world = World()
    world.start()
    changed = world.collect(world.strategy.set_spread_factor("BERA/USDT", 4.0))
    assert sorted(s.venue for s in changed) == list(VENUES)
    for venue in VENUES:
        # level 0: 20 bps x 4 = 80 bps (beyond max_spread_bps 60), level 1: 30 bps x 4
        assert [t.price for t in world.quotes(venue, "pas", Side.BUY)] == [D("2.4800"), D("2.4700")]
        assert [t.price for t in world.quotes(venue, "pas", Side.SELL)] == [D("2.5200"), D("2.5300")]
        # TOB zone 2..40 bps becomes 8..160 bps: one tick above the best bid is too close
        assert [t.price for t in world.quotes(venue, "tob")] == [D("2.4980"), D("2.5020")]
    assert world.strategy.set_spread_factor("BERA/USDT", 4.0) == []  # no change, nothing emitted
    world.collect(world.strategy.set_spread_factor("BERA/USDT", 1.0))
    assert [t.price for t in world.quotes("alpha", "tob")] == [D("2.4991"), D("2.5009")]
    assert world.quotes("alpha", "pas", Side.BUY)[0].price == D("2.4950")


def test_a_spread_factor_set_while_paused_applies_on_resume() -> None:
    world = World()
    world.start()
    world.collect(world.strategy.set_paused(True))
    assert world.strategy.set_spread_factor("BERA/USDT", 2.0) == []
    world.collect(world.strategy.set_paused(False))
    assert world.quotes("beta", "pas", Side.BUY)[0].price == D("2.4900")  # 40 bps
