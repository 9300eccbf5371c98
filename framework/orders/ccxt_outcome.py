"""What a ccxt REST call came to, as an Outcome: its unified order (accepted, with the state it shows) or the
exception it raised (rejected, not found, ambiguous, not sent). Venue modules classify with it and override
what their venue means otherwise."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from framework.events import OrderStatus
from framework.orders.model import Outcome, accepted, ambiguous, not_found, not_sent, rejected

_STATUS = {"open": OrderStatus.NEW, "closed": OrderStatus.FILLED, "canceled": OrderStatus.CANCELED,
           "cancelled": OrderStatus.CANCELED, "expired": OrderStatus.EXPIRED, "rejected": OrderStatus.REJECTED}


def _dec(value: Any) -> Decimal | None:
    """ccxt's number (text with `exchange.number = str`, else a float) as a Decimal through its text."""
    if value is None or value == "":
        return None
    return Decimal(value if isinstance(value, str) else repr(value))


def order_outcome(order: dict, contract_size: Decimal | None = None) -> Outcome:
    """ccxt's unified order → ACCEPTED with its id and state. `contract_size`: ccxt's amounts are contracts
    (multiplied into base units). A status ccxt left out (an ack-only answer) leaves `status` None."""
    size = contract_size or Decimal(1)
    amount, filled = _dec(order.get("amount")), _dec(order.get("filled"))
    status = _STATUS.get(str(order.get("status") or "").lower())
    if status is OrderStatus.NEW and filled:
        status = OrderStatus.PARTIALLY_FILLED
    return accepted(
        order.get("id"), status=status, amount=None if amount is None else amount * size,
        filled=None if filled is None else filled * size, price=_dec(order.get("price")),
        average=_dec(order.get("average")), client_order_id=order.get("clientOrderId") or None,
    )


def error_outcome(exc: BaseException) -> Outcome:
    """A ccxt exception's meaning for an order request (query: OrderNotFound is NOT_FOUND).

    - the connection was never made (aiohttp could not connect): NOT_SENT;
    - a timeout, a dropped connection, a 5xx, the venue not answering: AMBIGUOUS (it may have executed);
    - the venue's definite refusals (bad order, funds, auth, permission, bad symbol): REJECTED;
    - rate limits: AMBIGUOUS unless the venue module knows its venue refused without executing.
    """
    import aiohttp
    import ccxt

    message = f"{type(exc).__name__}: {exc}"[:300]
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, aiohttp.ClientConnectorError) or isinstance(exc, aiohttp.ClientConnectorError):
        return not_sent(message)
    if isinstance(exc, ccxt.OrderNotFound):
        return not_found(None, message)
    if isinstance(exc, (ccxt.RateLimitExceeded, ccxt.DDoSProtection)):
        return ambiguous(message, "rate_limit")
    if isinstance(exc, (ccxt.NetworkError, ccxt.ExchangeNotAvailable, ccxt.OnMaintenance)):
        return ambiguous(message)
    if isinstance(exc, (ccxt.InvalidOrder, ccxt.InsufficientFunds, ccxt.AuthenticationError, ccxt.PermissionDenied,
                        ccxt.BadSymbol, ccxt.BadRequest, ccxt.AccountSuspended, ccxt.NotSupported,
                        ccxt.ArgumentsRequired, ccxt.InvalidNonce)):  # InvalidNonce: outside the recvWindow
        return rejected(type(exc).__name__, message)
    return ambiguous(message)
