"""Replay through the real daemon: determinism (golden), decisions, bad files, no state_dir."""

from __future__ import annotations

import gzip
import importlib.util
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from sniper.cli import main as cli_main
from sniper.replay.format import iter_records
from sniper.replay.player import Player, main_replay
from sniper.replay.report import build_report
from sniper.replay.sample import sim_config
from sniper.replay.synth import write_synthetic_listing

SAMPLE = Path(__file__).parents[2] / "sniper" / "data" / "sample_listing.synthetic.rec.gz"


def config_file(tmp_path: Path, **entry: str) -> Path:
    quote = entry.get("quote_amount", "50")
    path = tmp_path / "config.yaml"
    path.write_text(f"""
exchange: {{rest_url: "http://127.0.0.1:9/api/v4", ws_url: "ws://127.0.0.1:9/ws/v4/"}}
state_dir: {tmp_path / "state"}
listing: {{quote_currencies: [USDT], poll_interval_s: 0.1}}
entry: {{quote_amount: "{quote}", max_slippage_pct: "10", deadline_s: 5}}
exit: {{take_profit_pct: "30", stop_loss_pct: "20", max_hold_s: 15}}
log: {{level: warning}}
""")
    return path


def replay_json(tmp_path: Path, name: str, recording: Path = SAMPLE,
                latency: int | None = None) -> bytes:
    out = tmp_path / name
    with (tmp_path / f"{name}.txt").open("w") as text:
        assert main_replay(str(recording), str(config_file(tmp_path)), report_dir=str(out),
                           latency_us=latency, out=text) == 0
    return (out / "report.json").read_bytes()


def test_golden_two_replays_are_byte_identical(tmp_path: Path) -> None:
    first = replay_json(tmp_path, "one")
    second = replay_json(tmp_path, "two")
    assert first == second
    report = orjson.loads(first)
    kinds = [(d["kind"], d.get("side")) for d in report["decisions"]
             if d["kind"] in ("buy_sent", "fill", "sell_placed", "closed")]
    # The sample: one listing, bought at the open, take profit filled on the spike.
    assert kinds[0] == ("buy_sent", None)
    assert ("fill", "buy") in kinds
    assert ("sell_placed", None) in kinds
    assert kinds[-1] in (("closed", None), ("fill", "sell"))
    assert report["recording"]["synthetic"] is True
    assert report["recording"]["complete"] is True
    (listing,) = report["listings"]
    assert listing["pair"] == "NEWCOIN_USDT"
    assert listing["close_reason"] == "take_profit"
    assert Decimal(listing["realized_pnl"]) > 0
    buy = next(d for d in report["decisions"] if d["kind"] == "buy_sent")
    fill = next(d for d in report["decisions"] if d["kind"] == "fill")
    # IOC at best ask x 1.10, filled at the best ask (the first ask of the open)
    assert Decimal(buy["price"]) > Decimal(fill["price"])
    assert (tmp_path / "one" / "report.html").read_text().count("NEWCOIN_USDT") > 0
    if importlib.util.find_spec("matplotlib") is not None:  # the optional `report` extra
        assert (tmp_path / "one" / "report.png").read_bytes()[:4] == b"\x89PNG"
    # the replay never touches the configured state_dir
    assert not (tmp_path / "state").exists()


def test_latency_model_changes_what_is_filled(tmp_path: Path) -> None:
    """With a latency longer than the frames' spacing, the fill sees the book moved on."""
    rec = tmp_path / "synth.rec.gz"
    write_synthetic_listing(rec, 3000)
    zero = orjson.loads(replay_json(tmp_path, "zero", rec))
    slow = orjson.loads(replay_json(tmp_path, "slow", rec, latency=20_000))
    def first_fill_t(r: dict[str, object]) -> int:
        return next(f["t_ms"] for f in r["fills"])  # type: ignore[attr-defined,index]
    def first_buy_t(r: dict[str, object]) -> int:
        return next(d["t_ms"] for d in r["decisions"]  # type: ignore[attr-defined]
                    if d["kind"] == "buy_sent")  # type: ignore[index]
    assert first_fill_t(zero) == first_buy_t(zero)
    assert first_fill_t(slow) == first_fill_t(zero) + 20
    assert slow["settings"]["latency_us"] == 20_000
    stages = slow["latency_replay_clock"]["decision_to_exchange"]
    assert stages["p50_ms"] == "20.000"


def cut_plain(src: Path, dst: Path, *, at_fraction: float, mangle: bool) -> int:
    """Rewrite ``src`` cut (or corrupted) inside a record about ``at_fraction`` in."""
    plain = gzip.decompress(src.read_bytes())
    records = list(iter_records(src))
    victim = records[int(len(records) * at_fraction)]
    if mangle:
        bad = plain[: victim.offset] + b"W 1 2 nonsense market\n" + plain[victim.offset:]
    else:
        bad = plain[: victim.offset + 7]
    dst.write_bytes(gzip.compress(bad, mtime=0))
    return victim.offset


@pytest.mark.parametrize("mangle", [False, True], ids=["truncated", "corrupt"])
def test_bad_recording_reports_offset_and_keeps_what_was_replayed(
    tmp_path: Path, mangle: bool
) -> None:
    full = orjson.loads(replay_json(tmp_path, "full"))
    bad = tmp_path / "bad.rec.gz"
    offset = cut_plain(SAMPLE, bad, at_fraction=0.6, mangle=mangle)
    report_dir = tmp_path / "bad-report"
    code = cli_main(["replay", str(bad), "--config", str(config_file(tmp_path)),
                     "--report", str(report_dir)])
    assert code == 1
    report = orjson.loads((report_dir / "report.json").read_bytes())
    assert report["recording"]["complete"] is False
    assert report["recording"]["error_offset"] == offset
    assert f"at byte {offset}" in report["recording"]["error"]
    # nothing replayed before the damage is lost: the decisions are a prefix of the full run's
    got = report["decisions"]
    assert got
    assert got == full["decisions"][: len(got)]
    assert any(d["kind"] == "buy_sent" for d in got)


def test_bad_recording_error_is_clear_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.rec.gz"
    data = SAMPLE.read_bytes()
    bad.write_bytes(data[: len(data) // 2])  # a copy cut short
    code = cli_main(["replay", str(bad), "--config", str(config_file(tmp_path))])
    assert code == 1
    err = capsys.readouterr().err
    assert "truncated" in err
    assert "at byte" in err
    missing = cli_main(["replay", str(tmp_path / "nope.gz"), "--config",
                        str(config_file(tmp_path))])
    assert missing == 1


def test_replay_throughput_is_measured(tmp_path: Path) -> None:
    rec = tmp_path / "synth.rec.gz"
    frames = write_synthetic_listing(rec, 20_000)
    cfg = sim_config("http://127.0.0.1:9/api/v4", "ws://127.0.0.1:9/ws/v4/",
                               tmp_path / "state")
    result = Player(rec, cfg, measure=False).run()
    assert result.frames == frames + 1
    rate = result.timing["frames_per_s"]
    print(f"replay throughput: {rate:,.0f} frames/s")
    assert rate > 10_000  # the target is 100,000 on an idle core; this only catches collapse
    report = build_report(result)
    assert report["daemon"]["armed"] == 1
    assert report["totals"]["buys"] >= 1
