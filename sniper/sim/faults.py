"""Fault injection for the simulator, per run (repeatable ``--fault SPEC``) and from tests.

A :class:`Faults` object is plain state that the servers consult at well-defined points:

- every REST request asks :meth:`Faults.take_http_fault` (answer 429 / 5xx instead);
- every outgoing WS frame asks :meth:`Faults.frame_delay_s` and :meth:`Faults.take_frame_drop`;
- every ``spot.order_book_update`` frame asks :meth:`Faults.take_book_skip` (the frame is not
  sent, so the client sees a gap in the update ids, as after a lost packet at Gate);
- every accepted order asks :meth:`Faults.take_order_blackhole` (the engine keeps the order,
  the client never gets an answer: ``"hang"`` withholds it, ``"close"`` drops the connection);
- the exchange clock adds :attr:`Faults.clock_skew_ms` (what ``/spot/time`` reports and what the
  signature window is checked against);
- :meth:`Faults.drop_ws_connections` closes every WebSocket connection now;
  :meth:`Faults.stall_ws_connections` silences them instead (no frame either way, no close);
- every ``spot.order_book_update`` frame also asks :meth:`Faults.take_book_reorder` (the frame
  is held back and sent right after the next one: an out-of-order update);
- REST requests may instead be cut (:meth:`Faults.reset_http`: the connection is closed
  without an answer) or answered late (:meth:`Faults.delay_http`: processed, then held);
  a 429 can carry Gate's ``X-Gate-RateLimit-*`` headers (``fail_http(reset_after_ms=...)``);
- WS trading API placements ask :meth:`Faults.take_ws_api_fault` with the channel name
  (``path_prefix="spot.order_place"``) and are answered with that status, unprocessed;
- every accepted order runs the callbacks queued by :meth:`Faults.after_next_order` (the
  engine took the order, nothing has been answered yet): drop the connections, debit a
  balance, suspend the pair... "right after the first buy" without racing the daemon;
- every outgoing WS frame asks :meth:`Faults.take_hostile_frame` (a garbage frame is written
  ahead of it), and :meth:`Faults.garble_http` answers REST requests ``200`` with a hostile
  body: malformed JSON, wrong shapes and types, as a broken or malicious peer would send.

CLI spec (comma separated, see :meth:`Faults.from_spec`)::

    skew_ms=5000, http429=3, http503=2@/spot/orders, drop_frames=5, drop_prob=0.05,
    delay_ms=20, skip_book=1, reorder_book=1, order_hang=1, order_close=1,
    drop_ws_every_s=30, reset_http=1@/spot/orders, delay_http_ms=1500@/spot/orders, seed=7,
    hostile_frames=10, hostile_http=3@/spot/currency_pairs
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sniper.errors import ConfigError

BlackholeMode = Literal["hang", "close"]
HttpMode = Literal["answer", "reset", "delay", "hostile"]
OrderHook = Callable[[Any], None]
"""Called with the accepted order (a :class:`~sniper.sim.entities.SimOrder` copy)."""

HOSTILE_PAYLOADS: tuple[str, ...] = (
    "not json at all",
    "{",
    "[1, 2",
    "null",
    "[]",
    '"just a string"',
    "9" * 5000,
    "[" * 3000 + "]" * 3000,
    '{"channel": 7, "event": ["update"], "result": {}}',
    '{"time": "x", "channel": "spot.order_book_update", "event": "update", "result": "abc"}',
    '{"channel": "spot.order_book_update", "event": "update", "result": {"s": "NEWCOIN_USDT",'
    ' "U": "x", "u": null, "a": [["NaN", "-1"]], "b": {"1": 2}}}',
    '{"channel": "spot.book_ticker", "event": "update", "result": {"s": "NEWCOIN_USDT",'
    ' "a": "1e999999", "A": "-5", "b": [], "B": "0"}}',
    '{"channel": "spot.orders", "event": "update", "result": [{"id": null, "text": 5}]}',
    '{"channel": "spot.usertrades", "event": "update", "result": [{"amount": "lots"}]}',
    '{"channel": "spot.balances", "event": "update", "result": "\\u0000"}',
    '{"header": {"status": "200"}, "data": {"result": {"id": []}}, "request_id": {}}',
    '{"channel": "spot.unknown_channel", "event": "update", "result": {"x": 1}}',
)
"""Garbage a broken or hostile peer might send: bad JSON, wrong shapes, absurd values."""

_DEFAULT_LABELS = {429: "TOO_MANY_REQUESTS", 500: "INTERNAL", 502: "SERVER_ERROR", 503: "TOO_BUSY"}


@dataclass(slots=True)
class HttpFault:
    """Answer the next ``remaining`` requests whose path starts with ``path_prefix``."""

    status: int
    label: str
    message: str
    remaining: int
    path_prefix: str | None = None
    mode: HttpMode = "answer"
    """``answer`` with ``status``; ``reset``: close the connection unanswered, unprocessed;
    ``delay``: process the request, answer ``delay_ms`` later."""
    reset_after_ms: int | None = None
    """With a 429: send ``X-Gate-RateLimit-*`` headers, the reset this far ahead."""
    delay_ms: int = 0
    body: bytes = b""
    """``hostile``: answer ``status`` with this raw body (garbage where JSON is expected)."""


class Faults:
    """Switchable faults; every method is cheap when nothing is switched on."""

    def __init__(self, seed: int | None = None) -> None:
        self.clock_skew_ms = 0
        self.frame_delay_ms = 0.0
        self.frame_drop_probability = 0.0
        self.drop_ws_every_s: float | None = None
        self._frame_drops_left = 0
        self._frame_drop_channel: str | None = None
        self._http: list[HttpFault] = []
        self._book_skips: dict[str | None, int] = {}
        self._blackholes: list[BlackholeMode] = []
        self._drop_listeners: list[Callable[[], None]] = []
        self._stall_listeners: list[Callable[[], None]] = []
        self._book_reorders: dict[str | None, int] = {}
        self._order_hooks: list[tuple[str | None, OrderHook]] = []
        self._hostile_left = 0
        self._hostile_channel: str | None = None
        self._hostile_next = 0
        self._random = random.Random(seed)
        self.fired: dict[str, int] = {}

    # -- switches -----------------------------------------------------------------------------

    def fail_http(
        self,
        count: int = 1,
        status: int = 429,
        *,
        path_prefix: str | None = None,
        label: str | None = None,
        message: str | None = None,
        reset_after_ms: int | None = None,
    ) -> None:
        """Answer the next ``count`` REST requests (optionally only under ``path_prefix``,
        a path relative to ``/api/v4`` such as ``/spot/orders``, or a WS trading API channel
        such as ``spot.order_place``) with ``status``, without processing them.

        ``reset_after_ms`` (with 429): the answer carries Gate's rate-limit headers, remaining
        0 and the window's reset that many ms ahead.
        """
        label = label or _DEFAULT_LABELS.get(status, "SERVER_ERROR")
        message = message or ("Request Rate limit Exceeded" if status == 429 else "Server error")
        self._http.append(
            HttpFault(status, label, message, count, path_prefix, reset_after_ms=reset_after_ms)
        )

    def reset_http(self, count: int = 1, *, path_prefix: str | None = None) -> None:
        """Close the connection of the next ``count`` REST requests (under ``path_prefix``)
        without processing or answering them: the client sees a reset."""
        self._http.append(HttpFault(0, "", "", count, path_prefix, mode="reset"))

    def delay_http(
        self, delay_ms: int, count: int = 1, *, path_prefix: str | None = None
    ) -> None:
        """Process the next ``count`` REST requests (under ``path_prefix``) normally but hold
        each answer ``delay_ms`` (a slow exchange: the client may give up before it comes)."""
        self._http.append(HttpFault(0, "", "", count, path_prefix, mode="delay",
                                    delay_ms=delay_ms))

    def garble_http(self, count: int = 1, *, path_prefix: str) -> None:
        """Answer the next ``count`` REST requests under ``path_prefix`` with ``200`` and a
        hostile body each (cycling :data:`HOSTILE_PAYLOADS`), unprocessed."""
        for i in range(count):
            body = HOSTILE_PAYLOADS[i % len(HOSTILE_PAYLOADS)].encode()
            self._http.append(HttpFault(200, "", "", 1, path_prefix, mode="hostile", body=body))

    def hostile_frames(self, count: int = 1, *, channel: str | None = None) -> None:
        """Write a garbage frame (cycling :data:`HOSTILE_PAYLOADS`) ahead of each of the next
        ``count`` outgoing WS frames (of ``channel`` if given)."""
        self._hostile_left = count
        self._hostile_channel = channel

    def drop_frames(
        self, count: int = 1, *, probability: float = 0.0, channel: str | None = None
    ) -> None:
        """Drop the next ``count`` outgoing WS frames (of ``channel`` if given) and, from now
        on, each frame with ``probability``."""
        self._frame_drops_left = count
        self._frame_drop_channel = channel
        self.frame_drop_probability = probability

    def delay_frames(self, delay_ms: float) -> None:
        """Delay every outgoing WS frame by ``delay_ms`` (0 switches it off)."""
        self.frame_delay_ms = delay_ms

    def skip_book_update(self, count: int = 1, pair: str | None = None) -> None:
        """Withhold the next ``count`` ``spot.order_book_update`` frames (of ``pair``)."""
        self._book_skips[pair] = self._book_skips.get(pair, 0) + count

    def reorder_book_update(self, count: int = 1, pair: str | None = None) -> None:
        """Hold back the next ``count`` ``spot.order_book_update`` frames (of ``pair``), each
        sent right after the frame that follows it (an out-of-order update)."""
        self._book_reorders[pair] = self._book_reorders.get(pair, 0) + count

    def after_next_order(self, hook: OrderHook, *, side: str | None = None) -> None:
        """Run ``hook(order)`` once, right after the engine accepts the next order (of
        ``side``), before anything is answered or pushed to the client."""
        self._order_hooks.append((side, hook))

    def blackhole_orders(self, count: int = 1, mode: BlackholeMode = "hang") -> None:
        """Accept the next ``count`` orders and never answer them (``hang``) or close the
        connection instead of answering (``close``): the client cannot know the outcome."""
        self._blackholes.extend([mode] * count)

    def set_clock_skew(self, skew_ms: int) -> None:
        """Shift the exchange clock by ``skew_ms`` relative to the host clock."""
        self.clock_skew_ms = skew_ms

    def drop_ws_connections(self) -> None:
        """Close every open WebSocket connection now (clients must reconnect)."""
        self._count("drop_ws")
        for listener in list(self._drop_listeners):
            listener()

    def on_drop_ws(self, listener: Callable[[], None]) -> None:
        """Register a server callback for :meth:`drop_ws_connections`."""
        self._drop_listeners.append(listener)

    def stall_ws_connections(self) -> None:
        """Silence every open WebSocket connection for good: it stays open, but nothing is
        sent on it and nothing received is processed (a silent stall; new connections are
        healthy). Clients must notice the silence themselves and reconnect."""
        self._count("stall_ws")
        for listener in list(self._stall_listeners):
            listener()

    def on_stall_ws(self, listener: Callable[[], None]) -> None:
        """Register a server callback for :meth:`stall_ws_connections`."""
        self._stall_listeners.append(listener)

    def clear(self) -> None:
        """Switch every fault off."""
        self.clock_skew_ms = 0
        self.frame_delay_ms = 0.0
        self.frame_drop_probability = 0.0
        self.drop_ws_every_s = None
        self._frame_drops_left = 0
        self._http.clear()
        self._book_skips.clear()
        self._book_reorders.clear()
        self._blackholes.clear()
        self._order_hooks.clear()
        self._hostile_left = 0

    # -- consulted by the servers -------------------------------------------------------------

    def take_http_fault(self, path: str) -> HttpFault | None:
        """The fault to answer a request to ``path`` (relative to ``/api/v4``) with, if any."""
        if not self._http:
            return None
        for fault in self._http:
            if fault.path_prefix is None or path.startswith(fault.path_prefix):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._http.remove(fault)
                self._count(f"http{fault.status}" if fault.mode == "answer" else
                            f"http_{fault.mode}")
                return fault
        return None

    def take_ws_api_fault(self, channel: str) -> HttpFault | None:
        """The fault to answer a WS trading API request on ``channel`` with, if any (only
        faults that name the channel, e.g. ``path_prefix="spot.order_place"``)."""
        for fault in self._http:
            if fault.path_prefix is not None and channel.startswith(fault.path_prefix):
                return self.take_http_fault(channel)
        return None

    def take_frame_drop(self, channel: str) -> bool:
        """Whether to drop this outgoing frame."""
        if self._frame_drops_left > 0 and self._frame_drop_channel in (None, channel):
            self._frame_drops_left -= 1
            self._count("drop_frame")
            return True
        if self.frame_drop_probability > 0 and self._random.random() < self.frame_drop_probability:
            self._count("drop_frame")
            return True
        return False

    def take_hostile_frame(self, channel: str) -> str | None:
        """A garbage frame to write ahead of this outgoing frame of ``channel``, if any."""
        if self._hostile_left <= 0 or self._hostile_channel not in (None, channel):
            return None
        self._hostile_left -= 1
        payload = HOSTILE_PAYLOADS[self._hostile_next % len(HOSTILE_PAYLOADS)]
        self._hostile_next += 1
        self._count("hostile_frame")
        return payload

    def take_book_skip(self, pair: str) -> bool:
        """Whether to withhold this ``spot.order_book_update`` frame of ``pair``."""
        if not self._book_skips:
            return False
        for key in (pair, None):
            left = self._book_skips.get(key, 0)
            if left > 0:
                if left == 1:
                    del self._book_skips[key]
                else:
                    self._book_skips[key] = left - 1
                self._count("skip_book")
                return True
        return False

    def take_book_reorder(self, pair: str) -> bool:
        """Whether to hold back this ``spot.order_book_update`` frame of ``pair``."""
        if not self._book_reorders:
            return False
        for key in (pair, None):
            left = self._book_reorders.get(key, 0)
            if left > 0:
                if left == 1:
                    del self._book_reorders[key]
                else:
                    self._book_reorders[key] = left - 1
                self._count("reorder_book")
                return True
        return False

    def take_order_hooks(self, side: str) -> list[OrderHook]:
        """The callbacks to run for an order of ``side`` just accepted (each runs once)."""
        if not self._order_hooks:
            return []
        due = [hook for want, hook in self._order_hooks if want in (None, side)]
        self._order_hooks = [(w, h) for w, h in self._order_hooks if w not in (None, side)]
        for _ in due:
            self._count("after_order")
        return due

    def take_order_blackhole(self) -> BlackholeMode | None:
        """How to (not) answer the order just accepted, if a blackhole is armed."""
        if not self._blackholes:
            return None
        self._count("order_blackhole")
        return self._blackholes.pop(0)

    def _count(self, name: str) -> None:
        self.fired[name] = self.fired.get(name, 0) + 1

    def statistics(self) -> dict[str, int]:
        """How many times each fault fired so far."""
        return dict(self.fired)

    # -- CLI ----------------------------------------------------------------------------------

    @classmethod
    def from_spec(cls, spec: str) -> Faults:
        """Parse a CLI spec such as ``"http429=3,skip_book=1,skew_ms=-2000"``.

        Raises :class:`~sniper.errors.ConfigError` on anything it does not understand.
        """
        items = [part.strip() for part in spec.split(",") if part.strip()]
        pairs: list[tuple[str, str]] = []
        for item in items:
            name, sep, value = item.partition("=")
            if not sep:
                raise ConfigError("faults", f"expected name=value, got {item!r}")
            pairs.append((name.strip(), value.strip()))
        seed = next((int(v) for n, v in pairs if n == "seed"), None)
        faults = cls(seed)
        try:
            for name, value in pairs:
                faults._apply(name, value)
        except ValueError as exc:
            raise ConfigError("faults", f"bad value in {spec!r}: {exc}") from exc
        return faults

    def _apply(self, name: str, value: str) -> None:
        if name == "seed":
            return
        if name == "skew_ms":
            self.set_clock_skew(int(value))
        elif name.startswith("http") and name[4:].isdigit():
            count, _, path = value.partition("@")
            self.fail_http(int(count), int(name[4:]), path_prefix=path or None)
        elif name == "drop_frames":
            self._frame_drops_left = int(value)
        elif name == "drop_prob":
            self.frame_drop_probability = float(value)
        elif name == "delay_ms":
            self.delay_frames(float(value))
        elif name == "skip_book":
            self.skip_book_update(int(value))
        elif name in ("order_hang", "order_close"):
            self.blackhole_orders(int(value), "hang" if name == "order_hang" else "close")
        elif name == "drop_ws_every_s":
            self.drop_ws_every_s = float(value)
        elif name == "hostile_frames":
            self.hostile_frames(int(value))
        elif name == "hostile_http":
            count, _, path = value.partition("@")
            if not path:
                raise ValueError("hostile_http needs @<path prefix>")
            self.garble_http(int(count), path_prefix=path)
        elif name == "reorder_book":
            self.reorder_book_update(int(value))
        elif name == "reset_http":
            count, _, path = value.partition("@")
            self.reset_http(int(count), path_prefix=path or None)
        elif name == "delay_http_ms":
            delay, _, path = value.partition("@")
            self.delay_http(int(delay), 1_000_000, path_prefix=path or None)
        else:
            raise ConfigError("faults", f"unknown fault {name!r}")
