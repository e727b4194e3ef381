from __future__ import annotations

from pathlib import Path

from sniper.app.journal import Journal
from sniper.app.killswitch import is_halted
from sniper.cli import main


def test_halt_and_resume_persist(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"state_dir: {tmp_path / 'state'}\n")
    assert main(["halt", "--config", str(cfg)]) == 0
    j = Journal.in_dir(tmp_path / "state")
    assert is_halted(j)
    assert main(["resume", "--config", str(cfg)]) == 0
    assert not is_halted(j)
