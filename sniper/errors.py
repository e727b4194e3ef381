"""One exception tree for the whole daemon, grouped by what the caller must do.

::

    SniperError
    ├── ConfigError ............... stop: fix the config / environment (exit code 78)
    ├── JournalError .............. stop trading: the journal cannot be trusted or written
    └── ExchangeError ............. something about talking to Gate (carries ``label``)
        ├── AuthError ............. stop: key, signature, permission, IP whitelist, clock
        ├── RateLimitedError ...... retry later (``retry_after_s`` when Gate says)
        ├── TransientError ........ retry later: 5xx, connection refused/reset *before* send
        ├── RejectedError ......... skip: Gate refused this request (``label`` says why)
        │   ├── InsufficientFundsError
        │   ├── InvalidOrderError
        │   ├── OrderNotFoundError
        │   └── PairNotTradableError
        ├── OutcomeUnknownError ... reconcile: sent, no answer; never assume "rejected"
        └── ProtocolError ......... the peer sent something we cannot decode (``raw`` kept)

Foreign exceptions (httpx, websockets, OSError) are translated at the edges with
``raise ... from``; nothing below the edges sees them. Gate error labels are mapped by
:func:`error_for_label`; :data:`LABEL_ERRORS` is checked for completeness by a test against
every label in the project's API reference.
"""

from __future__ import annotations

from typing import Final


class SniperError(Exception):
    """Base of every error the daemon raises on purpose."""


class ConfigError(SniperError):
    """The configuration or environment is wrong; ``path`` names the key (``entry.x``)."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}" if path else problem)


class JournalError(SniperError):
    """The journal is corrupt or cannot be written; trading must stop."""


class ExchangeError(SniperError):
    """An answer (or non-answer) from the exchange. ``label`` is Gate's error label, if any."""

    def __init__(
        self,
        message: str,
        *,
        label: str | None = None,
        status: int | None = None,
    ) -> None:
        self.label = label
        self.message = message
        self.status = status
        text = f"{label}: {message}" if label else message
        if status is not None:
            text = f"[{status}] {text}"
        super().__init__(text)


class AuthError(ExchangeError):
    """Authentication or permission failure: stop, a human must fix the key or clock."""


class RateLimitedError(ExchangeError):
    """Gate said slow down. ``retry_after_s`` is set when the reset time was given."""

    def __init__(
        self,
        message: str,
        *,
        label: str | None = "TOO_MANY_REQUESTS",
        status: int | None = 429,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message, label=label, status=status)
        self.retry_after_s = retry_after_s


class TransientError(ExchangeError):
    """A failure that is known not to have reached the matching engine; retry later."""


class RejectedError(ExchangeError):
    """Gate refused the request; it had no effect. Do not retry the same request blindly."""


class InsufficientFundsError(RejectedError):
    """Not enough available balance (``BALANCE_NOT_ENOUGH`` and friends)."""


class InvalidOrderError(RejectedError):
    """The order broke a rule: precision, minimums, post-only, FOK, price protection."""


class OrderNotFoundError(RejectedError):
    """No such order (or client id) on the exchange."""


class PairNotTradableError(RejectedError):
    """Unknown pair, or a pair that is not (yet) open for this side."""


class OutcomeUnknownError(ExchangeError):
    """The request was (or may have been) sent and no answer came.

    The order may exist. Reconcile by client id (``text``); never re-send as a new order.
    """

    def __init__(self, message: str, *, text: str | None = None) -> None:
        super().__init__(message, label=None, status=None)
        self.text = text


class ProtocolError(ExchangeError):
    """A payload could not be decoded. ``raw`` keeps the offending bytes/object for the log."""

    def __init__(self, message: str, *, raw: object = None) -> None:
        super().__init__(message)
        self.raw = raw


# Every label in shared/gate-v4.md section 3 (and the WS/batch notes), by what the caller does.
LABEL_ERRORS: Final[dict[str, type[ExchangeError]]] = {
    # authentication / permission: stop
    "INVALID_KEY": AuthError,
    "INVALID_SIGNATURE": AuthError,
    "MISSING_REQUIRED_HEADER": AuthError,
    "REQUEST_EXPIRED": AuthError,
    "IP_FORBIDDEN": AuthError,
    "READ_ONLY": AuthError,
    "FORBIDDEN": AuthError,
    "INVALID_CREDENTIALS": AuthError,
    "ACCOUNT_LOCKED": AuthError,
    # malformed request: skip (a bug on our side, never retried as-is)
    "INVALID_PARAM_VALUE": InvalidOrderError,
    "INVALID_ARGUMENT": InvalidOrderError,
    "INVALID_REQUEST_BODY": InvalidOrderError,
    "MISSING_REQUIRED_PARAM": InvalidOrderError,
    "BAD_REQUEST": InvalidOrderError,
    "INVALID_CONTENT_TYPE": InvalidOrderError,
    "INVALID_PROTOCOL": InvalidOrderError,
    "NOT_FOUND": RejectedError,
    "METHOD_NOT_ALLOWED": RejectedError,
    # pair
    "INVALID_CURRENCY_PAIR": PairNotTradableError,
    "INVALID_CURRENCY": PairNotTradableError,
    # order rules
    "INVALID_PRECISION": InvalidOrderError,
    "QUANTITY_NOT_ENOUGH": InvalidOrderError,
    "AMOUNT_TOO_LITTLE": InvalidOrderError,
    "AMOUNT_TOO_MUCH": InvalidOrderError,
    "POC_FILL_IMMEDIATELY": InvalidOrderError,
    "FOK_NOT_FILL": InvalidOrderError,
    "ORDER_CLOSED": InvalidOrderError,
    "ORDER_CANCELLED": InvalidOrderError,
    "TOO_MANY_CURRENCY_PAIRS": InvalidOrderError,
    "TOO_MANY_ORDERS": InvalidOrderError,
    "MIXED_ACCOUNT_TYPE": InvalidOrderError,
    "ORDER_BOOK_NOT_FOUND": InvalidOrderError,
    "REPEATED_CREATION": InvalidOrderError,
    "AUTO_TRIGGER_PRICE_LESS_LAST": InvalidOrderError,
    "AUTO_TRIGGER_PRICE_GREATE_LAST": InvalidOrderError,
    "DUPLICATE_REQUEST": InvalidOrderError,
    "ORDER_EXISTS": InvalidOrderError,
    # funds
    "BALANCE_NOT_ENOUGH": InsufficientFundsError,
    "TRADE_RESTRICTED": InsufficientFundsError,
    # lookups
    "ORDER_NOT_FOUND": OrderNotFoundError,
    "CLIENT_ID_NOT_FOUND": OrderNotFoundError,
    # slow down
    "TOO_MANY_REQUESTS": RateLimitedError,
    "TOO_FAST": RateLimitedError,
    # server side
    "INTERNAL": TransientError,
    "SERVER_ERROR": TransientError,
    "TOO_BUSY": TransientError,
}


def error_for_label(label: str | None, message: str, status: int | None = None) -> ExchangeError:
    """Build the typed error for a Gate error body (``label``, ``message``) and HTTP ``status``.

    Unknown labels fall back on the status class: 401/403 auth, 429 rate limit, 5xx transient,
    any other 4xx rejected. A label we have never seen is never treated as success.
    """
    cls = LABEL_ERRORS.get(label) if label else None
    if cls is None:
        if status in (401, 403):
            cls = AuthError
        elif status == 429:
            cls = RateLimitedError
        elif status is not None and status >= 500:
            cls = TransientError
        else:
            cls = RejectedError
    if cls is RateLimitedError:
        return RateLimitedError(message, label=label, status=status)
    return cls(message, label=label, status=status)
