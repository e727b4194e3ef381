"""``sniper halt`` / ``sniper resume``: a persistent kill switch shared with the running daemon.

The flag lives in the journal database (SQLite handles the two processes); the daemon reads it
every poll interval, so a halt takes effect within one poll. Exits keep being managed.
"""

from __future__ import annotations

import sys

from sniper.app.journal import Journal
from sniper.config import load_config

HALT_FLAG = "halted"


def is_halted(journal: Journal) -> bool:
    return journal.get_flag(HALT_FLAG) == "1"


def main_halt(config_path: str, *, halted: bool) -> int:
    config = load_config(config_path)
    journal = Journal.in_dir(config.state_dir)
    try:
        journal.set_flag(HALT_FLAG, "1" if halted else "0")
    finally:
        journal.close()
    word = "halted: no new listings will be armed or fired" if halted else "resumed"
    print(f"sniper {word} (state_dir={config.state_dir})", file=sys.stderr)
    return 0
