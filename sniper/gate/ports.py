"""The ports the application talks to; live, paper and replay edges implement them."""

from __future__ import annotations

from typing import Protocol

from sniper.core.models import Order, OrderAck, OrderRequest


class OrderGateway(Protocol):
    """Places, cancels and looks up orders. REST and the WS trading API both implement it.

    ``place`` raises :class:`~sniper.errors.OutcomeUnknownError` when the request may have
    reached Gate but no answer came; the caller reconciles by ``request.text``.
    """

    async def place(self, request: OrderRequest) -> Order | OrderAck: ...

    async def cancel(self, order_id: str, pair: str) -> Order: ...

    async def status(self, order_id: str, pair: str) -> Order: ...
