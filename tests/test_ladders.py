"""Accuracy against compute (psp.report.ladders): the Pareto front, saturation of a ladder, interpolation in log
compute, on synthetic ladders with known answers (the verdicts they feed: tests/test_claims.py)."""

import math

import pytest

from psp.registry import catalogue
from psp.report.catalogue import Catalogue
from psp.report.ladders import compute_to_match, ladder_points, saturation, top1_within
from psp.report.tabulate_compute import compute_table, display


def test_the_front_holds_the_points_nothing_beats_at_equal_or_lower_compute(ladder_runs):
    points = ladder_points(ladder_runs({"psp": [(1, 10, 70.0)], "gap": [(0.5, 2, 50.0), (1, 4, 60.0),
                                                                          (2, 8, 65.0), (4, 16, 66.0)],
                                         "slow": [(1, 20, 69.0)]}))
    front = points[points["front"]].sort_values("gflops")
    assert list(zip(front["method"], front["budget"], strict=True)) == [("gap", 0.5), ("gap", 1), ("gap", 2),
                                                                          ("psp", 1)]


def test_saturation_is_the_gain_of_the_last_doubling(ladder_runs):
    points = ladder_points(ladder_runs({"gap": [(1, 4, 60.0), (2, 8, 65.0), (4, 16, 66.0)]}))
    assert saturation(points) == pytest.approx(1.0)
    assert saturation(points.iloc[:1]) is None
    # A top rung at 4x the one below: the gain over its last doubling is interpolated (log compute) at half its cost.
    wide = ladder_points(ladder_runs({"gap": [(1, 4, 60.0), (4, 16, 64.0)]}))
    assert saturation(wide) == pytest.approx(2.0)


def test_compute_to_match_and_top1_within_interpolate_in_log_compute(ladder_runs):
    ladder = ladder_points(ladder_runs({"gap": [(1, 4, 60.0), (2, 8, 64.0), (4, 16, 66.0)]}))
    assert compute_to_match(ladder, 62.0) == pytest.approx(math.sqrt(4 * 8))
    assert compute_to_match(ladder, 70.0) is None
    assert compute_to_match(ladder, 50.0) == pytest.approx(4)
    assert top1_within(ladder, math.sqrt(8 * 16)) == pytest.approx(65.0)
    assert top1_within(ladder, 100) == pytest.approx(66.0)  # the whole ladder costs less: its best rung
    assert top1_within(ladder, 2) is None  # even the cheapest rung costs more


def test_the_compute_table_marks_a_ladder_still_rising_on_its_top_rung(ladder_runs):
    points = ladder_points(ladder_runs({"psp": [(1, 10, 70.0)], "gap": [(1, 4, 60.0), (2, 8, 62.0), (4, 16, 64.0)]}))
    shown = display(compute_table(points, Catalogue(catalogue()))).set_index(["method", "budget"])
    assert shown.loc[("gap", "×4"), "last doubling"] == "+2.00 pts (rising)"
    assert shown.loc[("gap", "×1 (own)"), "last doubling"] == "" == shown.loc[("psp", "×1 (own)"), "last doubling"]
