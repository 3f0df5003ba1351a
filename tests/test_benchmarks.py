"""The benchmark report's arithmetic (the measurements themselves run in `make bench`, not in tests)."""

import pytest

from hfmodels.benchmarks import goal_met, markdown_table, row


def test_ratios_and_goals_of_a_row():
    faster = row("rate", "tokens/s", [110.0, 120.0, 100.0], [100.0, 90.0, 95.0], "reference", ">= 1.0", higher_is_better=True)
    assert faster["ratio_median"] == pytest.approx(110 / 95) and faster["ratio_best"] == pytest.approx(120 / 100)
    assert faster["goal_met"] is True
    slower = row("time", "s/step", [1.2, 1.1], [1.0, 1.0], "reference", "<= 1.05", higher_is_better=False)
    assert slower["ratio_best"] == pytest.approx(1.1) and slower["goal_met"] is False
    report = row("memory", "MiB", [500.0], None, None, "(report)", higher_is_better=False)
    assert report["ratio_median"] is None and report["goal_met"] is None
    assert [goal_met(0.99, goal) for goal in ("< 1", "> 1", "<= 0.99", ">= 1.0", "(report)")] == [True, False, True, False, None]


def test_markdown_table_shows_every_row_and_its_verdict():
    rows = [row("rate", "tokens/s", [2.0], [1.0], "ref", ">= 1.0", True), row("memory", "MiB", [3.0], None, None, "(report)", False)]
    machine = {"cpu": "cpu", "cores": 2, "torch_threads": 2, "gpu": None, "versions": {"torch": "x"}}
    table = markdown_table({"machine": machine, "quick": True, "repeats": 2, "benchmarks": rows})
    assert "| rate | tokens/s | 2 | 1 (ref) | 2.000 | 2.000 | >= 1.0 | yes |" in table
    assert "| memory | MiB | 3 | – | – | – | (report) | – |" in table
