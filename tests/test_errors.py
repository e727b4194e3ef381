"""The error tree: every Gate label in the reference maps to a typed error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sniper.errors import (
    LABEL_ERRORS,
    AuthError,
    ExchangeError,
    InsufficientFundsError,
    InvalidOrderError,
    OrderNotFoundError,
    PairNotTradableError,
    RateLimitedError,
    RejectedError,
    TransientError,
    error_for_label,
)

# Every label named in shared/gate-v4.md (section 3 table, section 2.8, section 5 notes).
REFERENCE_LABELS = [
    "INVALID_KEY",
    "INVALID_SIGNATURE",
    "MISSING_REQUIRED_HEADER",
    "REQUEST_EXPIRED",
    "IP_FORBIDDEN",
    "READ_ONLY",
    "FORBIDDEN",
    "INVALID_CREDENTIALS",
    "ACCOUNT_LOCKED",
    "INVALID_PARAM_VALUE",
    "INVALID_ARGUMENT",
    "INVALID_REQUEST_BODY",
    "MISSING_REQUIRED_PARAM",
    "BAD_REQUEST",
    "INVALID_CONTENT_TYPE",
    "INVALID_PROTOCOL",
    "INVALID_CURRENCY_PAIR",
    "INVALID_CURRENCY",
    "INVALID_PRECISION",
    "BALANCE_NOT_ENOUGH",
    "QUANTITY_NOT_ENOUGH",
    "AMOUNT_TOO_LITTLE",
    "AMOUNT_TOO_MUCH",
    "POC_FILL_IMMEDIATELY",
    "FOK_NOT_FILL",
    "ORDER_NOT_FOUND",
    "CLIENT_ID_NOT_FOUND",
    "ORDER_CLOSED",
    "ORDER_CANCELLED",
    "TOO_MANY_CURRENCY_PAIRS",
    "TOO_MANY_ORDERS",
    "MIXED_ACCOUNT_TYPE",
    "ORDER_BOOK_NOT_FOUND",
    "TRADE_RESTRICTED",
    "REPEATED_CREATION",
    "DUPLICATE_REQUEST",
    "ORDER_EXISTS",
    "TOO_MANY_REQUESTS",
    "TOO_FAST",
    "INTERNAL",
    "SERVER_ERROR",
    "TOO_BUSY",
    "NOT_FOUND",
    "METHOD_NOT_ALLOWED",
    "AUTO_TRIGGER_PRICE_LESS_LAST",
    "AUTO_TRIGGER_PRICE_GREATE_LAST",
]

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "gate-v4.md"


def test_every_reference_label_is_mapped() -> None:
    missing = sorted(set(REFERENCE_LABELS) - set(LABEL_ERRORS))
    assert missing == []


def test_reference_file_labels_are_all_known_when_present() -> None:
    # CI lays shared/ beside the clone; a developer checkout has it too.
    if not REFERENCE.exists():
        assert REFERENCE_LABELS  # the embedded list above is then the reference
        return
    text = REFERENCE.read_text(encoding="utf-8")
    section = text[text.index("## 3. Errors") : text.index("## 4. Rate limits")]
    found = set(re.findall(r"`([A-Z][A-Z_]{3,})`", section))
    found -= {"ACK", "RESULT", "FULL"}
    assert sorted(found - set(LABEL_ERRORS)) == []


@pytest.mark.parametrize(
    ("label", "status", "cls"),
    [
        ("INVALID_SIGNATURE", 401, AuthError),
        ("BALANCE_NOT_ENOUGH", 400, InsufficientFundsError),
        ("INVALID_PRECISION", 400, InvalidOrderError),
        ("ORDER_NOT_FOUND", 404, OrderNotFoundError),
        ("INVALID_CURRENCY_PAIR", 400, PairNotTradableError),
        ("TOO_MANY_REQUESTS", 429, RateLimitedError),
        ("SERVER_ERROR", 500, TransientError),
        # unknown labels fall back on the HTTP status class, never on success
        ("SOMETHING_NEW", 401, AuthError),
        ("SOMETHING_NEW", 429, RateLimitedError),
        ("SOMETHING_NEW", 503, TransientError),
        ("SOMETHING_NEW", 400, RejectedError),
        (None, None, RejectedError),
    ],
)
def test_error_for_label(label: str | None, status: int | None, cls: type[ExchangeError]) -> None:
    err = error_for_label(label, "msg", status)
    assert type(err) is cls
    assert err.label == label
    assert err.status == status
    assert "msg" in str(err)
