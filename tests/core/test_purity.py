"""The core stays pure: no I/O libraries, no edges, no clock reads (checked with ``ast``).

Every ``.py`` under ``sniper/core/`` is parsed; imports are resolved (relative ones too) and
calls that read a clock are flagged. ``test_checker_*`` prove the checker itself can fail.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE_DIR = Path(__file__).resolve().parents[2] / "sniper" / "core"

FORBIDDEN_MODULES = frozenset(
    {
        # named by the design: event loops, network, storage, clocks
        "asyncio",
        "httpx",
        "websockets",
        "sqlite3",
        "socket",
        "time",
        "aiohttp",
        "uvloop",
        # the same kinds of thing under other names
        "anyio",
        "trio",
        "ssl",
        "select",
        "selectors",
        "subprocess",
        "threading",
        "multiprocessing",
        "concurrent",
        "http",
        "urllib",
        "requests",
        "importlib",  # dynamic imports would dodge this check
    }
)
FORBIDDEN_PACKAGES = ("sniper.gate", "sniper.app", "sniper.sim", "sniper.replay", "sniper.ops")
CLOCK_METHODS = frozenset({"now", "utcnow", "today"})
CLOCK_CLASSES = frozenset({"datetime", "date"})


def _forbidden(module: str) -> bool:
    if module.split(".")[0] in FORBIDDEN_MODULES:
        return True
    return any(module == p or module.startswith(p + ".") for p in FORBIDDEN_PACKAGES)


def _resolve(node: ast.ImportFrom, module_name: str, is_package: bool) -> str:
    """Absolute name of what ``from ... import`` refers to (relative imports resolved)."""
    if node.level == 0:
        return node.module or ""
    package = module_name.split(".") if is_package else module_name.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def find_impurities(
    source: str, module_name: str = "sniper.core.example", *, is_package: bool = False
) -> list[str]:
    """Every reason ``source`` (the text of ``module_name``) is not pure core code."""
    problems: list[str] = []
    clock_names = set(CLOCK_CLASSES)  # names bound to datetime/date, aliases included
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            problems += [
                f"line {node.lineno}: import {alias.name}"
                for alias in node.names
                if _forbidden(alias.name)
            ]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(node, module_name, is_package)
            for alias in node.names:
                if _forbidden(target) or _forbidden(f"{target}.{alias.name}"):
                    problems.append(f"line {node.lineno}: from {target} import {alias.name}")
                if target == "datetime" and alias.name in CLOCK_CLASSES:
                    clock_names.add(alias.asname or alias.name)
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id == "__import__":
            problems.append(f"line {node.lineno}: __import__()")
        if isinstance(func, ast.Attribute) and func.attr in CLOCK_METHODS:
            owner = func.value
            owner_name = (
                owner.id
                if isinstance(owner, ast.Name)
                else owner.attr
                if isinstance(owner, ast.Attribute)
                else None
            )
            if owner_name in clock_names:
                problems.append(f"line {node.lineno}: {owner_name}.{func.attr}() reads the clock")
    return problems


def _core_files() -> list[Path]:
    return sorted(CORE_DIR.rglob("*.py"))


def test_the_core_directory_is_where_we_think() -> None:
    assert (CORE_DIR / "models.py").is_file()
    assert len(_core_files()) >= 3


@pytest.mark.parametrize("path", _core_files(), ids=lambda p: p.name)
def test_core_module_is_pure(path: Path) -> None:
    relative = path.relative_to(CORE_DIR.parents[1]).with_suffix("")
    is_package = relative.name == "__init__"
    parts = relative.parts[:-1] if is_package else relative.parts
    module_name = ".".join(parts)
    source = path.read_text(encoding="utf-8")
    assert find_impurities(source, module_name, is_package=is_package) == []


# ------------------------------------------------------------------ the checker itself


@pytest.mark.parametrize(
    "source",
    [
        "import asyncio",
        "import time",
        "import os, socket",
        "import httpx as h",
        "import websockets.asyncio.client",
        "import sqlite3",
        "import aiohttp",
        "import uvloop",
        "import urllib.request",
        "from time import monotonic",
        "from time import monotonic_ns as clock",
        "from asyncio import sleep",
        "from sniper.gate import ports",
        "from sniper.gate.ports import OrderGateway",
        "from sniper import gate",
        "from sniper import app",
        "import sniper.ops.health",
        "from sniper.replay.player import Player",
        "from ..gate import ports",
        "from .. import sim",
        "from ..sim.engine import Engine",
        "import importlib",
        "__import__('time')",
        "from datetime import datetime\nx = datetime.now()",
        "from datetime import datetime as dt\nx = dt.utcnow()",
        "import datetime\nx = datetime.datetime.now()",
        "import datetime\nx = datetime.date.today()",
        "from datetime import date\nx = date.today()",
        "def f():\n    import time\n    return time.time()",
    ],
)
def test_checker_rejects(source: str) -> None:
    assert find_impurities(source, "sniper.core.example") != []


@pytest.mark.parametrize(
    "source",
    [
        "import hashlib, hmac",
        "from decimal import Decimal",
        "from sniper.core.models import PairInfo",
        "from sniper.errors import ExchangeError",
        "from . import models",
        "from .models import BookUpdate",
        "from sniper.gateway_names import X",  # only the real edge packages are banned
        "from datetime import datetime, timezone\nx = datetime(2024, 1, 1, tzinfo=timezone.utc)",
        "import calendar\nx = calendar.timegm((2024, 1, 1, 0, 0, 0, 0, 0, 0))",
        "def f(now_s: int) -> int:\n    return now_s + 1",
        "x = book.now()",  # a method named now on something else
    ],
)
def test_checker_accepts(source: str) -> None:
    assert find_impurities(source, "sniper.core.example") == []


def test_relative_imports_resolve_from_a_package_init() -> None:
    assert find_impurities("from .models import X", "sniper.core", is_package=True) == []
    assert find_impurities("from ..gate import X", "sniper.core", is_package=True) != []
    assert find_impurities("from .gate import X", "sniper", is_package=True) != []
