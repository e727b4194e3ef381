"""Logging: structlog set up the fast way, with every registered secret masked.

Production (``fmt="json"``, or ``"auto"`` when stderr is not a terminal) follows structlog's
performance guide: a filtering bound logger (disabled levels are a no-op method, not a
comparison), loggers cached on first use, and orjson rendering straight to bytes written to
stderr. ``fmt="pretty"`` (or ``"auto"`` on a terminal) uses the console renderer instead.

:func:`configure_logging` must run before anything logs: a cached logger keeps the
configuration it was first used with. Modules hold ``structlog.get_logger(...)`` proxies, which
are lazy, so creating them at import time is fine.

Redaction is the last processor before the renderer, after exceptions and stacks were turned
into text, so the message, every value (recursively, including the ``repr`` of objects and
exception texts) and values under sensitive keys (``secret``, ``sign``, ``KEY`` header...) are
masked. Secrets are registered by the config loader with :func:`register_secret`.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, BinaryIO, Final, TextIO, cast

import orjson
import structlog
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

from sniper.errors import ConfigError

MASK: Final = "***"

LEVELS: Final[Mapping[str, int]] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
FORMATS: Final = ("auto", "json", "pretty")

# Keys whose value is masked whatever it is: Gate's ``KEY``/``SIGN`` headers, and anything that
# is named like a credential. Compared lower-cased with ``-`` read as ``_``.
_SENSITIVE_KEYS: Final = frozenset(
    {"key", "sign", "signature", "api_key", "apikey", "authorization", "token", "bot_token"}
)
_SENSITIVE_PARTS: Final = ("secret", "signature", "passw", "_token", "credential")

# Shorter values would mask innocent substrings everywhere (a 2-character "secret" occurs in
# half the log); real keys and secrets are 32+ characters.
MIN_SECRET_LEN: Final = 4

_PRIMITIVES: Final = (int, float, bool, type(None))
_MAX_DEPTH: Final = 8


def is_sensitive_key(name: str) -> bool:
    """True when a value logged under ``name`` must be masked whatever it contains."""
    low = name.lower().replace("-", "_")
    return low in _SENSITIVE_KEYS or any(part in low for part in _SENSITIVE_PARTS)


class SecretRedactor:
    """A structlog processor that masks registered secrets and sensitive keys.

    Values of any type are handled: strings and bytes are scrubbed, mappings and sequences are
    walked, numbers pass through, anything else is replaced by its scrubbed ``repr`` (that is
    what the renderers would print, so a secret hidden in an object's ``repr`` is caught too).
    """

    __slots__ = ("_lock", "_pattern", "_pattern_b", "_secrets")

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._pattern_b: re.Pattern[bytes] | None = None
        self._lock = threading.Lock()

    def register(self, value: str | None) -> None:
        """Mask ``value`` (and its stripped form) wherever it appears from now on."""
        if not value:
            return
        candidates = {value, value.strip()}
        with self._lock:
            self._secrets.update(c for c in candidates if len(c) >= MIN_SECRET_LEN)
            # Longest first, so a secret containing another is masked whole.
            ordered = sorted(self._secrets, key=len, reverse=True)
            if ordered:
                self._pattern = re.compile("|".join(re.escape(s) for s in ordered))
                self._pattern_b = re.compile(b"|".join(re.escape(s.encode()) for s in ordered))

    def clear(self) -> None:
        """Forget every registered secret (tests)."""
        with self._lock:
            self._secrets.clear()
            self._pattern = None
            self._pattern_b = None

    def scrub(self, value: object, _depth: int = 0) -> object:
        """``value`` with every registered secret masked (see the class docstring)."""
        if isinstance(value, str):
            pattern = self._pattern
            return pattern.sub(MASK, value) if pattern is not None else value
        if isinstance(value, _PRIMITIVES):
            return value
        if isinstance(value, Decimal):
            return str(value)  # exact, and what a reader expects (not "Decimal('1.5')")
        if isinstance(value, bytes | bytearray):
            pattern_b = self._pattern_b
            raw = bytes(value)
            return pattern_b.sub(MASK.encode(), raw) if pattern_b is not None else raw
        if _depth < _MAX_DEPTH:  # deeper (or self-referencing) structures: scrubbed repr below
            if isinstance(value, Mapping):
                return {
                    self._scrub_key(k): self._scrub_item(k, v, _depth + 1)
                    for k, v in value.items()
                }
            if isinstance(value, list | tuple | set | frozenset):
                return [self.scrub(v, _depth + 1) for v in value]
        return self.scrub(repr(value))

    def _scrub_item(self, key: object, value: object, depth: int) -> object:
        if isinstance(key, str) and is_sensitive_key(key):
            return MASK
        return self.scrub(value, depth)

    def _scrub_key(self, key: object) -> str:
        return cast(str, self.scrub(key if isinstance(key, str) else repr(key)))

    def __call__(
        self,
        logger: WrappedLogger,  # noqa: ARG002 - the structlog processor signature
        method_name: str,  # noqa: ARG002 - same
        event_dict: EventDict,
    ) -> EventDict:
        """The processor: scrub every key of the event dict."""
        for key, value in event_dict.items():
            if is_sensitive_key(key):
                event_dict[key] = MASK
            else:
                event_dict[key] = self.scrub(value)
        return event_dict


# The one redactor of the process. A module global on purpose: secrets are registered by the
# config loader and must be masked in every logger, including ones created before that.
_REDACTOR: Final = SecretRedactor()


def register_secret(value: str | None) -> None:
    """Mask ``value`` in every log line from now on (the config loader calls this)."""
    _REDACTOR.register(value)


def redactor() -> SecretRedactor:
    """The process-wide redaction processor (for tests and custom processor chains)."""
    return _REDACTOR


class LineLogger:
    """The wrapped logger: writes one rendered line (bytes or str) and flushes.

    ``stream=None`` means whatever ``sys.stderr`` is *now*: structlog's own loggers keep the
    file they were created with, so a swapped stream (test runners, the CLI) would leave them
    writing to a closed file. ``name`` is the ``get_logger`` name, added to events by
    :func:`add_logger_name`.
    """

    __slots__ = ("_stream", "name")

    def __init__(self, name: str | None = None, stream: BinaryIO | TextIO | None = None) -> None:
        self.name = name
        self._stream = stream

    def msg(self, message: bytes | str) -> None:
        """Write one line and flush (a crash must not lose the lines before it)."""
        stream: Any = sys.stderr if self._stream is None else self._stream
        if isinstance(message, str):
            message = message.encode("utf-8", "replace")
        if hasattr(stream, "encoding"):  # a text stream
            buffer = getattr(stream, "buffer", None)
            if buffer is None:  # text only (io.StringIO)
                stream.write(message.decode("utf-8", "replace") + "\n")
                stream.flush()
                return
            stream.flush()  # keep order with text already written to it
            stream = buffer
        stream.write(message + b"\n")
        stream.flush()

    log = debug = info = warn = warning = error = critical = exception = fatal = failure = msg


def _line_logger_factory(stream: BinaryIO | TextIO | None) -> Any:
    def factory(*args: Any) -> LineLogger:
        return LineLogger(str(args[0]) if args else None, stream)

    return factory


def add_logger_name(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Processor: ``logger=<name>`` from the :class:`LineLogger`, unless already set."""
    del method_name
    name = getattr(logger, "name", None)
    if name is not None:
        event_dict.setdefault("logger", name)
    return event_dict


def build_processors(pretty: bool, *, colors: bool = False) -> list[Processor]:
    """The processor chain: context, level, time, exception text, redaction, renderer."""
    renderer: Processor
    if pretty:
        renderer = structlog.dev.ConsoleRenderer(colors=colors)
    else:
        # orjson renders straight to bytes; redaction already turned foreign objects into text.
        renderer = structlog.processors.JSONRenderer(serializer=orjson.dumps)
    return [
        structlog.contextvars.merge_contextvars,
        add_logger_name,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        # Exceptions become text *before* redaction so a secret in a message is masked.
        structlog.processors.format_exc_info,
        _REDACTOR,
        renderer,
    ]


def configure_logging(
    level: str = "info",
    fmt: str = "auto",
    *,
    stream: BinaryIO | TextIO | None = None,
    cache: bool = True,
) -> None:
    """Configure structlog for the whole process.

    ``level``: debug/info/warning/error/critical. ``fmt``: ``json``, ``pretty`` or ``auto``
    (pretty when ``stream``/stderr is a terminal). ``stream`` defaults to the current stderr
    (stdout is for command output such as ``check-config``). ``cache=False`` is for tests that
    reconfigure after loggers were used.
    """
    level_no = LEVELS.get(level.lower())
    if level_no is None:
        raise ConfigError("log.level", f"unknown level {level!r}; use one of {', '.join(LEVELS)}")
    if fmt not in FORMATS:
        raise ConfigError("log.format", f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    probe: Any = sys.stderr if stream is None else stream
    isatty = bool(getattr(probe, "isatty", lambda: False)())
    pretty = fmt == "pretty" or (fmt == "auto" and isatty)
    if pretty and not hasattr(probe, "encoding"):
        raise ConfigError("log.format", "pretty logs need a text stream")

    structlog.configure(
        processors=build_processors(pretty, colors=pretty and isatty),
        wrapper_class=structlog.make_filtering_bound_logger(level_no),
        context_class=dict,
        logger_factory=_line_logger_factory(stream),
        cache_logger_on_first_use=cache,
    )


def get_logger(name: str, **initial_values: Any) -> FilteringBoundLogger:
    """A lazy logger whose events carry ``logger=name``; safe to create at import time."""
    return cast(FilteringBoundLogger, structlog.get_logger(name, **initial_values))
