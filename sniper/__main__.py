"""``python -m sniper``."""

from sniper.cli import console_main

console_main()
