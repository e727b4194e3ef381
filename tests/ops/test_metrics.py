"""sniper.ops.metrics: private registry, names, labels, buckets, exposition."""

from __future__ import annotations

from decimal import Decimal

from prometheus_client.parser import text_string_to_metric_families

from sniper.ops.metrics import (
    CONTENT_TYPE,
    LATENCY_BUCKETS_S,
    LatencyStage,
    Metrics,
    OrderOutcome,
)


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Parse the exposition text back into {(name, labels): value}."""
    text = metrics.render().decode()
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_two_instances_do_not_share_a_registry() -> None:
    a, b = Metrics(), Metrics()
    a.listing_seen()
    assert samples(a)[("sniper_listings_seen_total", ())] == 1
    assert samples(b)[("sniper_listings_seen_total", ())] == 0


def test_latency_buckets_span_10us_to_100ms() -> None:
    assert LATENCY_BUCKETS_S[0] == 0.00001
    assert LATENCY_BUCKETS_S[-1] == 0.1
    assert list(LATENCY_BUCKETS_S) == sorted(LATENCY_BUCKETS_S)


def test_latency_histogram_per_stage() -> None:
    m = Metrics()
    m.observe_latency_ns(LatencyStage.FRAME_TO_DECISION, 15_000)  # 15 us
    m.observe_latency_s(LatencyStage.WRITTEN_TO_ACK, 0.003)
    m.observe_latency_s(LatencyStage.WRITTEN_TO_ACK, 0.5)  # beyond the last bucket
    s = samples(m)
    stage = (("stage", "frame_to_decision"),)
    assert s[("sniper_latency_seconds_bucket", (("le", "1e-05"), *stage))] == 0
    assert s[("sniper_latency_seconds_bucket", (("le", "2.5e-05"), *stage))] == 1
    assert s[("sniper_latency_seconds_count", stage)] == 1
    assert abs(s[("sniper_latency_seconds_sum", stage)] - 15e-6) < 1e-12

    ack = (("stage", "written_to_ack"),)
    assert s[("sniper_latency_seconds_bucket", (("le", "0.0025"), *ack))] == 0
    assert s[("sniper_latency_seconds_bucket", (("le", "0.005"), *ack))] == 1
    assert s[("sniper_latency_seconds_bucket", (("le", "0.1"), *ack))] == 1
    assert s[("sniper_latency_seconds_bucket", (("le", "+Inf"), *ack))] == 2
    # Every stage is exposed before its first sample.
    assert s[("sniper_latency_seconds_count", (("stage", "decision_to_written"),))] == 0


def test_counters_and_gauges() -> None:
    m = Metrics()
    m.order(OrderOutcome.FILLED)
    m.order(OrderOutcome.FILLED)
    m.order(OrderOutcome.UNKNOWN)
    m.ws_reconnect()
    m.listing_seen()
    m.notification_dropped(3)
    m.set_rate_limit_remaining("spot_orders", 7)
    m.set_rate_limit_remaining("currency_pairs", 180)
    m.set_rate_limit_remaining("spot_orders", 6)
    m.set_open_positions(2)
    m.set_pnl_quote(Decimal("-1.25"))
    s = samples(m)
    assert s[("sniper_orders_total", (("outcome", "filled"),))] == 2
    assert s[("sniper_orders_total", (("outcome", "unknown"),))] == 1
    assert s[("sniper_orders_total", (("outcome", "rejected"),))] == 0
    assert s[("sniper_ws_reconnects_total", ())] == 1
    assert s[("sniper_listings_seen_total", ())] == 1
    assert s[("sniper_notifications_dropped_total", ())] == 3
    assert s[("sniper_rate_limit_remaining", (("endpoint", "spot_orders"),))] == 6
    assert s[("sniper_rate_limit_remaining", (("endpoint", "currency_pairs"),))] == 180
    assert s[("sniper_open_positions", ())] == 2
    assert s[("sniper_pnl_quote", ())] == -1.25


def test_render_is_prometheus_text() -> None:
    body = Metrics().render()
    assert isinstance(body, bytes)
    assert b"# TYPE sniper_latency_seconds histogram" in body
    assert b"# TYPE sniper_orders_total counter" in body
    assert b"# TYPE sniper_open_positions gauge" in body
    assert CONTENT_TYPE.startswith("text/plain")
