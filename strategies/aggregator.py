"""Combined books across venues, with each venue's share of every level, and synthetic cross books.

A :class:`CombinedBookSpec` names a symbol (``BERA/USDT``), the venues whose own book of that
symbol joins the combined view, and optional cross routes: a ``BERA/BTC`` book converted
through ``BTC/USDT`` into ``BERA/USDT`` terms. The :class:`Aggregator` holds references to
the live :class:`~strategies.book.L2Book` objects the feed mutates; ``update(book)`` only says
which combined symbols a change touches, and the merge happens lazily when someone asks for
``combined(...)`` (cached until an input book's ``version`` moves).

Cross conversion is conservative, priced as if the route were executed now:

* a ``BERA/BTC`` bid at ``p`` BTC becomes a ``BERA/USDT`` bid at ``p * BTC/USDT bid``: you sell
  BERA for BTC, then sell that BTC at the BTC/USDT bid;
* a ``BERA/BTC`` ask at ``p`` becomes an ask at ``p * BTC/USDT ask``: you buy the BTC at the ask
  first, then pay it for the BERA.

Quantities stay in the base asset. Only the top of the via book is used (its depth is not
walked), so a cross level is as good as the best conversion price, not a fill guarantee for
size. With ``price_bucket`` set, bids round down and asks round up to the bucket, so levels
whose float prices differ by noise merge and no level looks better than it is.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import NamedTuple

from strategies.book import L2Book
from strategies.types import BookHealth, Side, SyncState

# Bucket rounding tolerance in bucket units: a float price 1e-9 buckets below a boundary is on it.
_BUCKET_EPSILON = 1e-9


def _split(symbol: str) -> tuple[str, str]:
    base, sep, quote = symbol.partition("/")
    if not sep or not base or not quote:
        raise ValueError(f"symbol {symbol!r} is not BASE/QUOTE")
    return base, quote


@dataclass(frozen=True, slots=True)
class CrossSpec:
    """A synthetic route into a combined symbol: ``source_symbol`` priced through ``via_symbol``.

    ``venues``: the venues whose ``source_symbol`` book is converted. ``via_venue``: where the
    ``via_symbol`` book comes from; None means the same venue as the source book (where you
    would actually convert).
    """

    source_symbol: str
    via_symbol: str
    venues: Sequence[str]
    via_venue: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "venues", tuple(self.venues))


@dataclass(frozen=True, slots=True)
class CombinedBookSpec:
    """Which books make up the combined view of ``symbol``.

    ``max_age_s``: with ``now`` given to :meth:`Aggregator.combined`, books whose last update is
    older than this are excluded too (health alone is always checked).
    """

    symbol: str
    venues: Sequence[str]
    cross: Sequence[CrossSpec] = ()
    price_bucket: float | None = None
    max_age_s: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "venues", tuple(self.venues))
        object.__setattr__(self, "cross", tuple(self.cross))
        if self.price_bucket is not None and not self.price_bucket > 0:
            raise ValueError(f"price_bucket must be positive, got {self.price_bucket}")
        base, quote = _split(self.symbol)
        for route in self.cross:
            src_base, src_quote = _split(route.source_symbol)
            via_base, via_quote = _split(route.via_symbol)
            if src_base != base or src_quote != via_base or via_quote != quote:
                raise ValueError(
                    f"cross route {route.source_symbol} via {route.via_symbol} does not lead to "
                    f"{self.symbol}: need {base}/X via X/{quote}"
                )


def cross_label(venue: str, source_symbol: str) -> str:
    """The venue label of a synthetic cross book in shares and exclusions, e.g. ``alpha:BERA/BTC``."""
    return f"{venue}:{source_symbol}"


class CombinedLevel(NamedTuple):
    """One combined price level: total quantity and each contributing venue's fraction of it."""

    price: float
    qty: float
    shares: dict[str, float]

    def venue_qty(self, venue: str) -> float:
        return self.qty * self.shares.get(venue, 0.0)


@dataclass(slots=True)
class CombinedBook:
    """A merged view of several venues' books of one symbol (best levels first)."""

    symbol: str
    bids: list[CombinedLevel]
    asks: list[CombinedLevel]
    venues: list[str]  # labels that contributed (direct venues and cross labels)
    excluded: list[tuple[str, str]] = field(default_factory=list)  # (label, why)

    def best_bid(self) -> float | None:
        return self.bids[0].price if self.bids else None

    def best_ask(self) -> float | None:
        return self.asks[0].price if self.asks else None

    def mid(self) -> float | None:
        """Midpoint of the best combined bid and ask (may be crossed across venues)."""
        if not self.bids or not self.asks:
            return None
        return (self.bids[0].price + self.asks[0].price) * 0.5

    def microprice(self) -> float | None:
        """Size-weighted mid over the combined top level of each side."""
        if not self.bids or not self.asks:
            return None
        bid, ask = self.bids[0], self.asks[0]
        return (bid.price * ask.qty + ask.price * bid.qty) / (bid.qty + ask.qty)

    def spread_bps(self) -> float | None:
        mid = self.mid()
        if mid is None:
            return None
        return (self.asks[0].price - self.bids[0].price) / mid * 1e4

    def depth_within_bps(self, bps: float, side: Side | None = None) -> float:
        """Base quantity within ``bps`` of the combined mid (inclusive); None side sums both."""
        mid = self.mid()
        if mid is None:
            return 0.0
        total = 0.0
        if side is None or side is Side.BUY:
            floor = mid * (1.0 - bps * 1e-4)
            total += sum(lv.qty for lv in self.bids if lv.price >= floor)
        if side is None or side is Side.SELL:
            ceiling = mid * (1.0 + bps * 1e-4)
            total += sum(lv.qty for lv in self.asks if lv.price <= ceiling)
        return total

    def fill_price(self, taker_side: Side, size: float) -> float | None:
        """Average price to take ``size`` across all venues at once (None if the levels held are short)."""
        levels = self.asks if taker_side is Side.BUY else self.bids
        if size <= 0.0:
            return levels[0].price if levels else None
        remaining = size
        cost = 0.0
        slack = size * 1e-12  # float noise in the running remainder must not fail a fill that fits
        for lv in levels:
            if lv.qty + slack >= remaining:
                return (cost + lv.price * min(lv.qty, remaining)) / size
            cost += lv.price * lv.qty
            remaining -= lv.qty
        return None

    def shares_at_top(self) -> tuple[dict[str, float], dict[str, float]]:
        """Venue shares of the best bid and the best ask levels (empty dicts when a side is empty)."""
        return (
            dict(self.bids[0].shares) if self.bids else {},
            dict(self.asks[0].shares) if self.asks else {},
        )


# ---------------------------------------------------------------------- merging


def _bucket_key(price: float, bucket: float, side: Side) -> float:
    """The bucket index of a price, rounded in the safe direction (bids down, asks up)."""
    units = price / bucket
    if side is Side.BUY:
        return float(math.floor(units + _BUCKET_EPSILON))
    return float(math.ceil(units - _BUCKET_EPSILON))


def _add(merged: dict[float, dict[str, float]], key: float, label: str, qty: float) -> None:
    by_venue = merged.get(key)
    if by_venue is None:
        merged[key] = {label: qty}
    else:
        by_venue[label] = by_venue.get(label, 0.0) + qty


def _merge_side(
    books: Mapping[str, L2Book], side: Side, depth: int | None, bucket: float | None
) -> list[CombinedLevel]:
    merged: dict[float, dict[str, float]] = {}
    for label, book in books.items():
        if bucket is None:
            # Only a venue's best `depth` levels can appear among the combined best `depth`.
            walk = book.levels(side) if depth is None else islice(book.levels(side), depth)
            for price, qty in walk:
                _add(merged, price, label, qty)
            continue
        seen = 0
        last_key: float | None = None
        for price, qty in book.levels(side):
            key = _bucket_key(price, bucket, side)
            if key != last_key:
                # Levels arrive best first, so a new key is a new (worse) bucket of this venue;
                # as above, only its best `depth` buckets matter.
                seen += 1
                if depth is not None and seen > depth:
                    break
                last_key = key
            _add(merged, key, label, qty)
    keys = sorted(merged, reverse=side is Side.BUY)
    if depth is not None:
        keys = keys[:depth]
    levels: list[CombinedLevel] = []
    for key in keys:
        by_venue = merged[key]
        total = math.fsum(by_venue.values())
        price = key if bucket is None else round(key * bucket, 12)
        levels.append(CombinedLevel(price, total, {v: q / total for v, q in by_venue.items()}))
    return levels


def combine(
    symbol: str,
    books: Mapping[str, L2Book],
    depth: int | None = 50,
    price_bucket: float | None = None,
    excluded: Sequence[tuple[str, str]] = (),
) -> CombinedBook:
    """Merge already-vetted books (label -> book) into one :class:`CombinedBook`.

    Levels at the same price (or bucket) merge; each level's ``shares`` map every contributing
    label to its fraction of the level's quantity. ``depth`` bounds the levels per side.
    """
    return CombinedBook(
        symbol=symbol,
        bids=_merge_side(books, Side.BUY, depth, price_bucket),
        asks=_merge_side(books, Side.SELL, depth, price_bucket),
        venues=list(books),
        excluded=list(excluded),
    )


def convert_cross(source: L2Book, via: L2Book, label: str, symbol: str, into: L2Book | None = None) -> L2Book:
    """The ``source`` book (BASE/X) in ``symbol`` (BASE/QUOTE) terms through ``via`` (X/QUOTE).

    Bids use the via bid and asks the via ask (module docstring). The result's health is the
    worse of the two inputs and its timestamps the older, so it is never trusted more than
    either leg. An empty via side empties the matching converted side.
    """
    book = into if into is not None else L2Book(label, symbol)
    via_bid = via.best_bid()
    via_ask = via.best_ask()
    bids = [(p * via_bid, q) for p, q in source.bid_levels()] if via_bid is not None else []
    asks = [(p * via_ask, q) for p, q in source.ask_levels()] if via_ask is not None else []
    ts = min(source.ts, via.ts)
    book.apply_snapshot(bids, asks, source.seq, ts)
    book.health = _worse_health(source, via, ts)
    return book


def _worse_health(source: L2Book, via: L2Book, ts: float) -> BookHealth:
    for leg in (source, via):
        if not leg.health.usable:
            why = leg.health.reason or leg.health.state.value
            return BookHealth(
                state=leg.health.state,
                last_update_ts=ts,
                reason=f"{leg.symbol}@{leg.venue} {why}",
            )
    last = min(source.health.last_update_ts, via.health.last_update_ts)
    return BookHealth(state=SyncState.IN_SYNC, last_update_ts=last)


def book_age(book: L2Book, now: float) -> float:
    """Seconds since the freshest evidence that ``book`` is current (its last change or health stamp)."""
    last = max(book.ts, book.health.last_update_ts)
    return now - last if last > 0.0 else math.inf


def exclusion_reason(
    book: L2Book | None, now: float | None = None, max_age_s: float | None = None
) -> str | None:
    """Why a book must not be used, or None if it may: missing, not in sync, stale, or empty."""
    if book is None:
        return "no book"
    if not book.health.usable:
        detail = f": {book.health.reason}" if book.health.reason else ""
        return f"{book.health.state.value}{detail}"
    if now is not None and max_age_s is not None:
        age = book_age(book, now)
        if age > max_age_s:
            return f"stale: last update {age:.1f}s ago > {max_age_s:g}s"
    if book.best_bid() is None and book.best_ask() is None:
        return "empty"
    return None


# ---------------------------------------------------------------------- the aggregator


@dataclass(slots=True)
class _CrossRoute:
    label: str
    venue: str
    source_symbol: str
    via_venue: str
    via_symbol: str
    symbol: str
    book: L2Book
    built_from: tuple[int, int, int, int] | None = None  # (id(source), source.version, id(via), via.version)


_CacheKey = tuple[str, tuple[str, ...] | None, int | None]  # (symbol, venues asked for, depth)


class Aggregator:
    """Combined views over the configured venues, refreshed lazily from live books."""

    def __init__(self, specs: Sequence[CombinedBookSpec]) -> None:
        self.specs: dict[str, CombinedBookSpec] = {}
        self._books: dict[tuple[str, str], L2Book] = {}
        self._routes: dict[str, list[_CrossRoute]] = {}
        # (venue, symbol) of an input book -> combined symbols it feeds
        self._dependants: dict[tuple[str, str], list[str]] = {}
        self._cache: dict[_CacheKey, tuple[tuple[object, ...], CombinedBook]] = {}
        # live book object (hashed by identity) -> the combined symbols it feeds: update()'s fast path
        self._registered: dict[L2Book, tuple[str, ...]] = {}
        for spec in specs:
            if spec.symbol in self.specs:
                raise ValueError(f"two combined book specs for {spec.symbol}")
            self.specs[spec.symbol] = spec
            for venue in spec.venues:
                self._depend((venue, spec.symbol), spec.symbol)
            routes = []
            for cross in spec.cross:
                for venue in cross.venues:
                    label = cross_label(venue, cross.source_symbol)
                    via_venue = cross.via_venue or venue
                    routes.append(
                        _CrossRoute(
                            label=label,
                            venue=venue,
                            source_symbol=cross.source_symbol,
                            via_venue=via_venue,
                            via_symbol=cross.via_symbol,
                            symbol=spec.symbol,
                            book=L2Book(label, spec.symbol),
                        )
                    )
                    self._depend((venue, cross.source_symbol), spec.symbol)
                    self._depend((via_venue, cross.via_symbol), spec.symbol)
            self._routes[spec.symbol] = routes

    def _depend(self, key: tuple[str, str], symbol: str) -> None:
        dependants = self._dependants.setdefault(key, [])
        if symbol not in dependants:
            dependants.append(symbol)

    def update(self, book: L2Book) -> tuple[str, ...]:
        """Register (or re-register) a live book after it changed; returns the combined symbols it feeds.

        The aggregator keeps the reference, so later in-place changes are seen too; the merge
        itself waits until :meth:`combined` is asked. The feed calls this on every update, so
        a book already registered costs one dict lookup and returns a cached tuple.
        """
        feeds = self._registered.get(book)
        if feeds is not None:
            return feeds
        key = (book.venue, book.symbol)
        previous = self._books.get(key)
        if previous is not None:
            self._registered.pop(previous, None)  # replaced: the old object is no longer the live book
        self._books[key] = book
        feeds = tuple(self._dependants.get(key, ()))
        self._registered[book] = feeds
        return feeds

    def feeds(self, book: L2Book) -> tuple[str, ...]:
        """The combined symbols a registered live book feeds (empty for one never registered)."""
        return self._registered.get(book, ())

    def book(self, venue: str, symbol: str) -> L2Book | None:
        """The live book of one venue and symbol, if the feed has registered it."""
        return self._books.get((venue, symbol))

    @property
    def books(self) -> Mapping[tuple[str, str], L2Book]:
        """Every registered live book by (venue, symbol)."""
        return self._books

    def sources(self, symbol: str) -> dict[str, L2Book | None]:
        """Every book configured for ``symbol``'s combined view, by label (None when not registered).

        Direct venues map to their live book, cross labels to the converted synthetic book
        (rebuilt here if either leg changed).
        """
        spec = self.specs.get(symbol)
        if spec is None:
            raise KeyError(f"no combined book spec for {symbol}")
        found: dict[str, L2Book | None] = {venue: self._books.get((venue, symbol)) for venue in spec.venues}
        for route in self._routes[symbol]:
            found[route.label] = self._cross_book(route)
        return found

    def _cross_book(self, route: _CrossRoute) -> L2Book | None:
        source = self._books.get((route.venue, route.source_symbol))
        via = self._books.get((route.via_venue, route.via_symbol))
        if source is None or via is None:
            return None
        stamp = (id(source), source.version, id(via), via.version)
        if route.built_from != stamp:
            convert_cross(source, via, route.label, route.symbol, into=route.book)
            route.built_from = stamp
        return route.book

    def combined(
        self,
        symbol: str,
        venues: Sequence[str] | None = None,
        depth: int | None = 50,
        now: float | None = None,
    ) -> CombinedBook:
        """The combined book of ``symbol``, over ``venues`` if given, best ``depth`` levels per side.

        ``venues`` selects direct venues and cross labels by name; naming a venue also selects its
        cross books (``alpha`` selects ``alpha:BERA/BTC``). Books that are missing, not in sync,
        empty, or (with ``now`` and the spec's ``max_age_s``) stale are left out and listed in
        ``excluded``, as is a name the spec does not know. Treat the result as read-only: it is
        cached and shared until an input book changes.
        """
        spec = self.specs.get(symbol)
        if spec is None:
            raise KeyError(f"no combined book spec for {symbol}")
        wanted = None if venues is None else set(venues)
        usable: dict[str, L2Book] = {}
        excluded: list[tuple[str, str]] = []
        matched: set[str] = set()
        for label, book in self.sources(symbol).items():
            if wanted is not None:
                names = {label, label.partition(":")[0]} & wanted
                if not names:
                    continue
                matched |= names
            why = exclusion_reason(book, now, spec.max_age_s)
            if why is not None:
                excluded.append((label, why))
            elif book is not None:
                usable[label] = book
        for name in sorted((wanted or set()) - matched):
            excluded.append((name, f"not configured for {symbol}"))
        fingerprint = (
            tuple((label, id(book), book.version) for label, book in usable.items()),
            tuple(excluded),
        )
        cache_key = (symbol, None if venues is None else tuple(venues), depth)
        cached = self._cache.get(cache_key)
        if cached is not None and cached[0] == fingerprint:
            return cached[1]
        result = combine(symbol, usable, depth, spec.price_bucket, excluded)
        self._cache[cache_key] = (fingerprint, result)
        return result

    def __iter__(self) -> Iterator[str]:
        return iter(self.specs)
