"""The benchmark report's arithmetic (the measurements themselves run in `make bench`, not in tests)."""

import json
import os
import threading
import time

import pytest

from hfmodels import benchmarks
from hfmodels.benchmarks import (
    BLOCK,
    LoopDone,
    StepClock,
    goal_met,
    markdown_table,
    row,
    timed_steps,
)


def test_ratios_and_goals_of_a_row():
    faster = row("rate", "tokens/s", [110.0, 120.0, 100.0], [100.0, 90.0, 95.0], "reference", ">= 1.0",
                 higher_is_better=True)
    assert faster["ratio_median"] == pytest.approx(110 / 95) and faster["ratio_best"] == pytest.approx(120 / 100)
    assert faster["goal_met"] is True
    slower = row("time", "s/step", [1.2, 1.1], [1.0, 1.0], "reference", "<= 1.05", higher_is_better=False)
    assert slower["ratio_best"] == pytest.approx(1.1) and slower["goal_met"] is False
    report = row("memory", "MiB", [500.0], None, None, "(report)", higher_is_better=False)
    assert report["ratio_median"] is None and report["goal_met"] is None
    goals = ("< 1", "> 1", "<= 0.99", ">= 1.0", "(report)")
    assert [goal_met(0.99, goal) for goal in goals] == [True, False, True, False, None]


def test_markdown_table_shows_every_row_and_its_verdict():
    rows = [row("rate", "tokens/s", [2.0], [1.0], "ref", ">= 1.0", True),
            row("memory", "MiB", [3.0], None, None, "(report)", False)]
    machine = {"cpu": "cpu", "cores": 2, "torch_threads": 2, "gpu": None, "versions": {"torch": "x"}}
    table = markdown_table({"machine": machine, "quick": True, "repeats": 2, "benchmarks": rows})
    assert "| rate | tokens/s | 2 | 1 (ref) | 2.000 | 2.000 | >= 1.0 | yes |" in table
    assert "| memory | MiB | 3 | – | – | – | (report) | – |" in table


def test_a_new_report_replaces_the_table_and_keeps_the_notes(tmp_path, monkeypatch):
    (tmp_path / "benchmarks.md").write_text(
        "# Benchmarks\n\n| old table |\n\n## Notes\n\n- why the old figures are so\n"
    )
    monkeypatch.setitem(benchmarks.SECTIONS, "rate",
                        lambda repeats, quick: [row("rate", "tokens/s", [2.0], [1.0], "ref", ">= 1.0", True)])
    benchmarks.run(["rate"], repeats=1, quick=True, output=tmp_path)
    report = (tmp_path / "benchmarks.md").read_text()
    assert "| rate | tokens/s | 2 | 1 (ref) |" in report and "old table" not in report
    assert report.endswith("\n## Notes\n\n- why the old figures are so\n")
    assert json.loads((tmp_path / "benchmarks.json").read_text())["benchmarks"][0]["name"] == "rate"


def test_running_some_sections_keeps_the_rows_of_the_others(tmp_path, monkeypatch):
    for name, value in (("rate", 2.0), ("speed", 3.0)):
        monkeypatch.setitem(benchmarks.SECTIONS, name, lambda repeats, quick, name=name, value=value: [
            row(name, "tokens/s", [value], [1.0], "ref", ">= 1.0", True)])
    benchmarks.run(["rate", "speed"], repeats=1, quick=True, output=tmp_path)
    monkeypatch.setitem(benchmarks.SECTIONS, "speed",
                        lambda repeats, quick: [row("speed", "tokens/s", [5.0], [1.0], "ref", ">= 1.0", True)])
    benchmarks.run(["speed"], repeats=1, quick=True, output=tmp_path)
    rows = json.loads((tmp_path / "benchmarks.json").read_text())["benchmarks"]
    assert [(r["section"], r["ours"]["median"]) for r in rows] == [("rate", 2.0), ("speed", 5.0)]


def test_timed_steps_leave_out_the_warm_up_and_each_epoch_change():
    durations = [float(step) for step in range(1, 13)]  # step s took s seconds
    # 4 steps an epoch: steps 5 and 9 start an epoch (an evaluation, a new iterator); steps 1-2 warm up
    assert timed_steps(durations, steps_per_epoch=4, warmup=2) == [3.0, 4.0, 6.0, 7.0, 8.0, 10.0, 11.0, 12.0]
    assert timed_steps(durations, steps_per_epoch=100, warmup=10) == [11.0, 12.0]


def test_step_clock_hands_over_every_block_and_leaves_the_wait_out(monkeypatch):
    signal_read, signal_write = os.pipe()
    turn_read, turn_write = os.pipe()
    monkeypatch.setenv("HFMODELS_BENCH_FDS", f"{signal_write},{turn_read}")
    clock = StepClock(steps=2 + BLOCK)  # hands over after step 1, after step 1 + BLOCK, and when done
    ended = []

    def loop():
        with pytest.raises(LoopDone):
            while True:
                clock()
        ended.append(len(clock.durations))

    thread = threading.Thread(target=loop)
    thread.start()
    signals = []
    while b"d" not in signals:
        signals.append(os.read(signal_read, 1))
        time.sleep(0.2)  # the other loops' turns
        os.write(turn_write, b"g")
    thread.join()
    assert signals == [b"p", b"p", b"d"]
    assert ended == [clock.steps]  # the clock ended the loop at its last step
    assert max(clock.durations[1:]) < 0.1  # no step holds a wait of 0.2 s
    for fd in (signal_read, signal_write, turn_read, turn_write):
        os.close(fd)
