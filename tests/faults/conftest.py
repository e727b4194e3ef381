"""Fault-suite wiring: reuse the e2e harness; write the reliability tally at the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.conftest import *  # noqa: F403 - the e2e fixtures (e2e, sim helpers)
from tests.faults.tally import dump_if_requested


@pytest.fixture(scope="session", autouse=True)
def _reliability_tally() -> Iterator[None]:
    yield
    dump_if_requested()
