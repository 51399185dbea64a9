"""Reference prices: the price a line quotes around, from a source chosen per use.

Four kinds (seed 004, "smart pricing selection"):

* ``aggregated`` — every configured book of the symbol as one book: the highest bid and the
  lowest ask anywhere (with an :class:`~strategies.aggregator.Aggregator`, cross books count);
* ``component`` — the same over a named subset of venues (e.g. ``["gamma"]``);
* ``liquidity_weighted`` — each venue's own mid (or microprice) weighted by the base quantity
  it rests within ``depth_bps`` of that mid; equal weights if no venue has any such depth;
* ``single`` — one venue's book.

Every kind first drops the books it must not trust and lists them with the reason: missing,
not in sync (``BookHealth``), older than ``max_age_s``, empty or crossed (a crossed single
book means missed updates), or one-sided where a mid is needed. When nothing usable is left,
the value is None and the caller pulls its quotes.

``now`` must be on the same clock as the timestamps the feed gives the books.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from strategies.aggregator import Aggregator, exclusion_reason
from strategies.book import L2Book

PriceField = Literal["mid", "microprice"]


class ReferenceKind(enum.StrEnum):
    """Where a reference price comes from; the value is the YAML spelling."""

    AGGREGATED = "aggregated"
    COMPONENT = "component"
    LIQUIDITY_WEIGHTED = "liquidity_weighted"
    SINGLE = "single"


@dataclass(frozen=True, slots=True)
class ReferenceSpec:
    """How one use (a line, a risk check) wants its reference price.

    ``venues``: required for ``component`` and ``single`` (exactly one), optional for
    ``liquidity_weighted`` (None = all), None for ``aggregated``. A name
    selects a direct venue or a cross label (``alpha:BERA/BTC``); a bare venue name also
    selects that venue's cross books.
    """

    kind: ReferenceKind
    venues: Sequence[str] | None = None
    depth_bps: float = 50.0
    max_age_s: float = 5.0
    price: PriceField = "mid"

    def __post_init__(self) -> None:
        if self.venues is not None:
            object.__setattr__(self, "venues", tuple(self.venues))
        if self.kind is ReferenceKind.AGGREGATED and self.venues is not None:
            raise ValueError("an aggregated reference uses every venue; use 'component' for a subset")
        if self.kind is ReferenceKind.COMPONENT and not self.venues:
            raise ValueError("a component reference needs its venues")
        if self.kind is ReferenceKind.SINGLE and (self.venues is None or len(self.venues) != 1):
            raise ValueError("a single-venue reference needs exactly one venue")
        if self.price not in ("mid", "microprice"):
            raise ValueError(f"price must be 'mid' or 'microprice', got {self.price!r}")
        if self.depth_bps <= 0 or self.max_age_s <= 0:
            raise ValueError("depth_bps and max_age_s must be positive")


@dataclass(frozen=True, slots=True)
class ReferencePrice:
    """A reference price and its provenance. ``value`` None means: do not quote."""

    value: float | None
    kind: ReferenceKind
    venues_used: list[str] = field(default_factory=list)
    excluded: list[tuple[str, str]] = field(default_factory=list)  # (venue label, why)
    reason: str = ""  # empty when all is well; otherwise what limited or prevented the value

    @property
    def ok(self) -> bool:
        return self.value is not None


BookSource = Mapping[tuple[str, str], L2Book] | Aggregator


def _candidates(source: BookSource, symbol: str) -> dict[str, L2Book | None]:
    if isinstance(source, Aggregator):
        if symbol in source.specs:
            found = source.sources(symbol)
            # a book registered for the symbol but outside the combined spec can still be picked by name
            for (venue, book_symbol), book in source.books.items():
                if book_symbol == symbol and venue not in found:
                    found[venue] = book
            return found
        source = source.books
    return {venue: book for (venue, book_symbol), book in source.items() if book_symbol == symbol}


def _select(candidates: dict[str, L2Book | None], venues: Sequence[str] | None) -> dict[str, L2Book | None]:
    if venues is None:
        return candidates
    chosen: dict[str, L2Book | None] = {}
    for name in venues:
        matched = False
        for label, book in candidates.items():
            if label == name or label.partition(":")[0] == name:
                chosen[label] = book
                matched = True
        if not matched:
            chosen[name] = None
    return chosen


def _price_of(book: L2Book, price: PriceField) -> float | None:
    return book.mid() if price == "mid" else book.microprice()


def reference_price(spec: ReferenceSpec, books: BookSource, symbol: str, now: float) -> ReferencePrice:
    """Compute the reference price of ``symbol`` as ``spec`` asks, from live books.

    ``books`` is either a mapping (venue, symbol) -> book or an :class:`Aggregator` (which adds
    its synthetic cross books).
    """
    chosen = _select(_candidates(books, symbol), spec.venues)
    usable: dict[str, L2Book] = {}
    excluded: list[tuple[str, str]] = []
    needs_both_sides = spec.kind in (ReferenceKind.SINGLE, ReferenceKind.LIQUIDITY_WEIGHTED)
    for label, book in chosen.items():
        why = exclusion_reason(book, now, spec.max_age_s)
        if why is None and book is not None:
            if book.is_crossed():
                why = "crossed"
            elif needs_both_sides and book.mid() is None:
                why = "one-sided"
        if why is not None or book is None:
            excluded.append((label, why or "no book"))
        else:
            usable[label] = book

    if not usable:
        return ReferencePrice(None, spec.kind, [], excluded, f"no usable book for {symbol}")
    if spec.kind is ReferenceKind.LIQUIDITY_WEIGHTED:
        return _liquidity_weighted(spec, usable, excluded)
    return _combined_top(spec, usable, excluded, symbol)


def _combined_top(
    spec: ReferenceSpec, usable: dict[str, L2Book], excluded: list[tuple[str, str]], symbol: str
) -> ReferencePrice:
    """Mid or microprice of the usable books seen as one: best bid and ask anywhere, sizes summed."""
    best_bid = -math.inf
    best_ask = math.inf
    for book in usable.values():
        bid = book.best_bid()
        ask = book.best_ask()
        if bid is not None and bid > best_bid:
            best_bid = bid
        if ask is not None and ask < best_ask:
            best_ask = ask
    venues = list(usable)
    if best_bid == -math.inf or best_ask == math.inf:
        return ReferencePrice(None, spec.kind, venues, excluded, f"usable books for {symbol} are one-sided")
    if spec.price == "mid":
        value = (best_bid + best_ask) * 0.5
    else:
        bid_size = math.fsum(book.bid_qty(best_bid) for book in usable.values())
        ask_size = math.fsum(book.ask_qty(best_ask) for book in usable.values())
        value = (best_bid * ask_size + best_ask * bid_size) / (bid_size + ask_size)
    # Across venues a crossed top is an arbitrage, not corruption: the price is still meaningful.
    reason = "crossed across venues" if best_bid >= best_ask else ""
    return ReferencePrice(value, spec.kind, venues, excluded, reason)


def _liquidity_weighted(
    spec: ReferenceSpec, usable: dict[str, L2Book], excluded: list[tuple[str, str]]
) -> ReferencePrice:
    prices: list[float] = []
    weights: list[float] = []
    for book in usable.values():
        price = _price_of(book, spec.price)
        if price is None:  # unreachable: one-sided books were excluded above
            continue
        prices.append(price)
        weights.append(book.depth_within_bps(spec.depth_bps))
    total = math.fsum(weights)
    reason = ""
    if total <= 0.0:
        weights = [1.0] * len(prices)
        total = float(len(prices))
        reason = f"no depth within {spec.depth_bps:g} bps anywhere: equal weights"
    value = math.fsum(p * w for p, w in zip(prices, weights, strict=True)) / total
    return ReferencePrice(value, spec.kind, list(usable), excluded, reason)
