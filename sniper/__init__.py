"""sniper: a daemon that snipes new spot listings on Gate.io (API v4)."""

__version__ = "0.1.0"
