"""The e2e harness's fixture, for the daemon-level ops tests."""

from tests.e2e.conftest import e2e  # noqa: F401 - re-exported fixture
