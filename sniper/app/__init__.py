"""Orchestration: poller, armer/trigger, exit manager, journal, assembly, signals."""
