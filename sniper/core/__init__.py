"""Pure logic: no I/O, no clocks, no sockets (enforced by tests/core/test_purity.py)."""
