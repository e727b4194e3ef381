"""Users and their spot balances: available and locked, moved only through these methods.

Every movement returns the :class:`BalanceChanged` it caused, so ``spot.balances`` pushes are
exactly the movements (shared/gate-v4.md §6.5). Balances never go negative: an attempt is a bug
in the engine and raises ``ValueError`` rather than corrupting the books.
"""

from __future__ import annotations

from decimal import Decimal

from sniper.sim.entities import ZERO, UserAccount
from sniper.sim.events import BalanceChanged


class Accounts:
    """The users of one simulated exchange, by uid and by API key."""

    def __init__(self, first_uid: int = 10_000_001) -> None:
        self._next_uid = first_uid
        self._by_uid: dict[int, UserAccount] = {}
        self._by_key: dict[str, int] = {}

    def add(
        self,
        api_key: str,
        api_secret: str,
        balances: dict[str, Decimal],
        *,
        taker_fee: Decimal,
        maker_fee: Decimal,
        robot: bool = False,
    ) -> int:
        """Create a user and return its uid. An API key may belong to one user only."""
        if api_key in self._by_key:
            raise ValueError(f"API key {api_key!r} already belongs to a user")
        uid = self._next_uid
        self._next_uid += 1
        account = UserAccount(
            uid=uid,
            api_key=api_key,
            api_secret=api_secret,
            taker_fee=taker_fee,
            maker_fee=maker_fee,
            robot=robot,
        )
        for currency, amount in balances.items():
            if amount < 0:
                raise ValueError(f"negative starting balance for {currency}")
            account.balances[currency] = [amount, ZERO]
        self._by_uid[uid] = account
        self._by_key[api_key] = uid
        return uid

    def get(self, uid: int) -> UserAccount:
        """The user ``uid`` (``KeyError`` if unknown: the servers only pass authenticated uids)."""
        return self._by_uid[uid]

    def by_key(self, api_key: str) -> tuple[int, str] | None:
        """``(uid, secret)`` for an API key, or ``None``."""
        uid = self._by_key.get(api_key)
        if uid is None:
            return None
        return uid, self._by_uid[uid].api_secret

    def available(self, uid: int, currency: str) -> Decimal:
        """Spendable balance."""
        return self._slot(uid, currency)[0]

    def balances(self, uid: int) -> dict[str, tuple[Decimal, Decimal]]:
        """``{currency: (available, locked)}``."""
        return {cur: (v[0], v[1]) for cur, v in self._by_uid[uid].balances.items()}

    def lock(
        self, uid: int, currency: str, amount: Decimal, change_type: str, time_ms: int
    ) -> BalanceChanged:
        """Move ``amount`` from available to locked (order placed)."""
        slot = self._slot(uid, currency)
        if amount > slot[0]:
            raise ValueError(f"cannot lock {amount} {currency}: only {slot[0]} available")
        slot[0] -= amount
        slot[1] += amount
        return self._event(uid, currency, ZERO, amount, change_type, time_ms)

    def unlock(
        self, uid: int, currency: str, amount: Decimal, change_type: str, time_ms: int
    ) -> BalanceChanged:
        """Move ``amount`` from locked back to available (order ended, price improvement)."""
        slot = self._slot(uid, currency)
        if amount > slot[1]:
            raise ValueError(f"cannot unlock {amount} {currency}: only {slot[1]} locked")
        slot[0] += amount
        slot[1] -= amount
        return self._event(uid, currency, ZERO, -amount, change_type, time_ms)

    def spend_locked(
        self, uid: int, currency: str, amount: Decimal, change_type: str, time_ms: int
    ) -> BalanceChanged:
        """Remove ``amount`` from locked (paid to the counterparty in a fill)."""
        slot = self._slot(uid, currency)
        if amount > slot[1]:
            raise ValueError(f"cannot spend {amount} {currency}: only {slot[1]} locked")
        slot[1] -= amount
        return self._event(uid, currency, -amount, -amount, change_type, time_ms)

    def credit(
        self, uid: int, currency: str, amount: Decimal, change_type: str, time_ms: int
    ) -> BalanceChanged:
        """Add ``amount`` to available (received in a fill, net of fee)."""
        slot = self._slot(uid, currency)
        slot[0] += amount
        return self._event(uid, currency, amount, ZERO, change_type, time_ms)

    def withdraw(
        self, uid: int, currency: str, amount: Decimal, change_type: str, time_ms: int
    ) -> BalanceChanged:
        """Remove ``amount`` from available (a withdrawal, a transfer out)."""
        slot = self._slot(uid, currency)
        if amount > slot[0]:
            raise ValueError(f"cannot withdraw {amount} {currency}: only {slot[0]} available")
        slot[0] -= amount
        return self._event(uid, currency, -amount, ZERO, change_type, time_ms)

    def _slot(self, uid: int, currency: str) -> list[Decimal]:
        return self._by_uid[uid].balances.setdefault(currency, [ZERO, ZERO])

    def _event(
        self,
        uid: int,
        currency: str,
        change: Decimal,
        locked_change: Decimal,
        change_type: str,
        time_ms: int,
    ) -> BalanceChanged:
        slot = self._by_uid[uid].balances[currency]
        return BalanceChanged(
            user_id=uid,
            currency=currency,
            available=slot[0],
            locked=slot[1],
            change=change,
            change_type=change_type,
            time_ms=time_ms,
            locked_change=locked_change,
        )
