"""Prometheus metrics on a private registry (never the global one, so tests and several
daemons in one process do not collide).

Latency is recorded in seconds (Prometheus convention) with buckets from 10 µs to 100 ms, the
range between one hot-path step on loopback and a slow exchange acknowledgement. Callers on the
hot path record *after* the order is sent, from ``time.perf_counter_ns``/``monotonic_ns``
differences, through :meth:`Metrics.observe_latency_ns`; label children are resolved once here
so an observation is a dictionary lookup and a histogram update.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from decimal import Decimal
from enum import StrEnum
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
"""The content type of :meth:`Metrics.render` (Prometheus text format 0.0.4)."""

LATENCY_BUCKETS_S: Final = (
    0.00001,
    0.000025,
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
)


class LatencyStage(StrEnum):
    """Where the time of one order goes, as consecutive stages."""

    FRAME_TO_DECISION = "frame_to_decision"  # book frame received -> order decided
    DECISION_TO_WRITTEN = "decision_to_written"  # decided -> bytes written to the socket
    WRITTEN_TO_ACK = "written_to_ack"  # written -> exchange acknowledgement received


class OrderOutcome(StrEnum):
    """How an order attempt ended (the ``outcome`` label of ``orders_total``)."""

    FILLED = "filled"
    PARTIAL = "partial"
    UNFILLED = "unfilled"  # IOC that matched nothing
    REJECTED = "rejected"
    UNKNOWN = "unknown"  # sent, no answer: reconciled later
    ERROR = "error"  # failed before it reached the exchange


class Metrics:
    """All the daemon's metrics, on one :class:`CollectorRegistry`.

    Metric names (``sniper_`` prefix): ``latency_seconds{stage}``, ``orders_total{outcome}``,
    ``listings_seen_total``, ``ws_reconnects_total``, ``rate_limit_remaining{endpoint}``,
    ``open_positions``, ``pnl_quote``, ``notifications_dropped_total``.
    """

    def __init__(
        self, registry: CollectorRegistry | None = None, namespace: str = "sniper"
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True) if registry is None else registry
        r = self.registry
        self.latency = Histogram(
            "latency_seconds",
            "Order path latency per stage.",
            ["stage"],
            namespace=namespace,
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.orders = Counter(
            "orders", "Order attempts by outcome.", ["outcome"], namespace=namespace, registry=r
        )
        self.listings_seen = Counter(
            "listings_seen", "New listings detected.", namespace=namespace, registry=r
        )
        self.ws_reconnects = Counter(
            "ws_reconnects", "WebSocket reconnections.", namespace=namespace, registry=r
        )
        self.notifications_dropped = Counter(
            "notifications_dropped",
            "Notifications dropped (queue full, failed, or pending at shutdown).",
            namespace=namespace,
            registry=r,
        )
        self.rate_limit_remaining = Gauge(
            "rate_limit_remaining",
            "Requests left in the current rate-limit window, as Gate reported it.",
            ["endpoint"],
            namespace=namespace,
            registry=r,
        )
        self.open_positions = Gauge(
            "open_positions", "Positions currently held.", namespace=namespace, registry=r
        )
        self.pnl_quote = Gauge(
            "pnl_quote",
            "Realised profit and loss in the quote currency (display only; the journal is exact).",
            namespace=namespace,
            registry=r,
        )
        # Resolve label children once: stages and outcomes also show up as 0 before first use.
        self._stages = {stage: self.latency.labels(stage.value) for stage in LatencyStage}
        self._outcomes = {outcome: self.orders.labels(outcome.value) for outcome in OrderOutcome}
        self._before_render: list[Callable[[Metrics], None]] = []
        self._reconnects_seen = 0

    def before_render(self, refresh: Callable[[Metrics], None]) -> None:
        """Call ``refresh(self)`` before every :meth:`render`: values sampled from other
        objects' counters (reconnects, rate-limit headers) are exact at scrape time and cost
        nothing between scrapes. A failing ``refresh`` is skipped, never breaks a scrape."""
        self._before_render.append(refresh)

    def observe_latency_s(self, stage: LatencyStage, seconds: float) -> None:
        """Record one latency sample for ``stage``."""
        self._stages[stage].observe(seconds)

    def observe_latency_ns(self, stage: LatencyStage, nanoseconds: int) -> None:
        """Record one latency sample given in nanoseconds (``perf_counter_ns`` differences)."""
        self._stages[stage].observe(nanoseconds / 1e9)

    def order(self, outcome: OrderOutcome) -> None:
        """Count one order attempt by outcome."""
        self._outcomes[outcome].inc()

    def listing_seen(self) -> None:
        """Count one newly detected listing."""
        self.listings_seen.inc()

    def ws_reconnect(self) -> None:
        """Count one WebSocket reconnection."""
        self.ws_reconnects.inc()

    def set_ws_reconnects(self, total: int) -> None:
        """Raise ``ws_reconnects_total`` to ``total`` (a sum of the connections' own counters;
        a smaller total, e.g. from a connection that was replaced, never lowers the counter)."""
        if total > self._reconnects_seen:
            self.ws_reconnects.inc(total - self._reconnects_seen)
            self._reconnects_seen = total

    def notification_dropped(self, n: int = 1) -> None:
        """Count dropped notifications."""
        self.notifications_dropped.inc(n)

    def set_rate_limit_remaining(self, endpoint: str, remaining: int) -> None:
        """Gate's ``X-Gate-RateLimit-Requests-Remain`` for ``endpoint`` (a route name)."""
        self.rate_limit_remaining.labels(endpoint).set(remaining)

    def set_open_positions(self, count: int) -> None:
        """The number of positions currently held."""
        self.open_positions.set(count)

    def set_pnl_quote(self, pnl: Decimal) -> None:
        """Realised PnL; converted to float for exposition only (never computed with)."""
        self.pnl_quote.set(float(pnl))

    def render(self) -> bytes:
        """The text exposition of every metric (``CONTENT_TYPE``)."""
        for refresh in self._before_render:
            with contextlib.suppress(Exception):
                refresh(self)
        return generate_latest(self.registry)
