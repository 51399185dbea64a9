"""The few outcomes of a venue request the order manager acts on.

ccxt raises dozens of exception types; the order manager only needs to know whether the
venue refused the request (:class:`Rejected`), told us to slow down (:class:`RateLimited`),
did not find the order (:class:`OrderNotFound`), or left us not knowing what happened
(:class:`OutcomeUnknown`). :func:`classify` maps one to the other.
"""

from __future__ import annotations

import enum

import ccxt.async_support as ccxt


class RejectReason(enum.StrEnum):
    """Why the venue refused an order; used as a counter label."""

    WOULD_TAKE = "would_take"  # post-only order would have crossed the book
    INSUFFICIENT_BALANCE = "insufficient_balance"
    FILTER = "filter"  # price/size/notional filter failure
    DUPLICATE = "duplicate"
    OTHER = "other"


class ExecutionError(Exception):
    """Base of the typed outcomes."""


class Rejected(ExecutionError):
    """The venue processed the request and refused it: nothing was placed."""

    def __init__(self, reason: RejectReason, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


class RateLimited(ExecutionError):
    """The venue refused the request for weight (429/418): nothing was done; wait."""

    def __init__(self, retry_after_s: float, message: str) -> None:
        super().__init__(f"rate limited for {retry_after_s:.1f}s: {message}")
        self.retry_after_s = retry_after_s


class OrderNotFound(ExecutionError):
    """The venue answered that the order does not exist (or is no longer open)."""


class OutcomeUnknown(ExecutionError):
    """Timeout, connection reset or 5xx: the request may or may not have taken effect."""


DEFAULT_RETRY_AFTER_S = 1.0


def retry_after_from_headers(headers: object) -> float | None:
    """``Retry-After`` in seconds from a response's headers, if present and numeric."""
    if not isinstance(headers, dict):
        return None
    for key, value in headers.items():
        if str(key).lower() == "retry-after":
            try:
                return max(float(value), 0.0)
            except (TypeError, ValueError):
                return None
    return None


def _reject_reason(exc: ccxt.BaseError) -> RejectReason:
    text = str(exc).lower()
    if isinstance(exc, ccxt.OrderImmediatelyFillable) or "immediately match" in text:
        return RejectReason.WOULD_TAKE
    if isinstance(exc, ccxt.InsufficientFunds) or "insufficient" in text:
        return RejectReason.INSUFFICIENT_BALANCE
    if "duplicate" in text:
        return RejectReason.DUPLICATE
    if "filter" in text or "notional" in text or "lot_size" in text or "tick" in text:
        return RejectReason.FILTER
    return RejectReason.OTHER


_DEFINITE_REFUSALS = (
    ccxt.InvalidOrder,
    ccxt.InsufficientFunds,
    ccxt.BadRequest,
    ccxt.BadSymbol,
    ccxt.OperationRejected,
    ccxt.AuthenticationError,
    ccxt.PermissionDenied,
)


def classify(exc: BaseException, headers: object = None) -> ExecutionError:
    """Map a ccxt (or transport) exception to a typed outcome.

    Order matters: ccxt's hierarchy nests ``RateLimitExceeded`` under ``NetworkError`` and
    ``OrderNotFound``/``OrderImmediatelyFillable`` under ``InvalidOrder``.
    """
    if isinstance(exc, ExecutionError):
        return exc
    if isinstance(exc, ccxt.RateLimitExceeded | ccxt.DDoSProtection):
        retry = retry_after_from_headers(headers)
        return RateLimited(DEFAULT_RETRY_AFTER_S if retry is None else retry, str(exc))
    if isinstance(exc, ccxt.OrderNotFound):
        return OrderNotFound(str(exc))
    if isinstance(exc, _DEFINITE_REFUSALS):
        # A 4xx answer with a reason: the venue saw the request and did nothing with it.
        return Rejected(_reject_reason(exc), str(exc))
    if isinstance(exc, ccxt.BaseError | TimeoutError | OSError):
        # Timeouts, resets, 5xx, unparseable or unclassified answers: it may have happened.
        return OutcomeUnknown(f"{type(exc).__name__}: {exc}")
    raise exc
