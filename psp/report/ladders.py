"""Accuracy against compute: each method along its budget ladder, the Pareto front, and compute-matched comparisons.

A point is one (dataset, model, target, method, budget) at the default calibration size: top-1 and the FLOPs the
method executed (``method_flops``, counted as it ran), each a mean over seeds. A method without a ladder is one point.
The front holds the points that no other point beats at equal or lower compute. The table, the figure and the
compute-matched verdicts all read :func:`ladder_points`, so they cannot disagree.
"""

import math

import numpy as np
import pandas as pd

from psp.pruning_target import PruningTarget
from psp.report.summaries import SETUP, main_runs

POINT = SETUP + ["target_kind", "target", "method"]
# A ladder has saturated when its last doubling of compute gained less than this (points of top-1).
SATURATION_POINTS = 0.5


def ladder_runs(runs: pd.DataFrame, design: dict) -> pd.DataFrame:
    """The runs of the compute study among ``runs`` (read with every rung, ``read_runs(path, ladders=True)``): every
    budget, at the ladder targets (every target when there are none), at the default calibration size, with a
    counted compute, pruned (the unpruned control, dense_bn, reaches no target)."""
    runs = main_runs(runs, design["default_samples"])
    targets = [PruningTarget.parse(t).value for t in design.get("budget_targets") or design["targets"]]
    runs = runs[runs["target"].isin(targets) & (runs["macs_reduction"] > 1)]
    if "method_flops" not in runs.columns:
        return runs.iloc[0:0]
    return runs[runs["method_flops"].notna() & (runs["method_flops"] > 0)]


def ladder_points(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (setup, target, method, budget): ``gflops``, ``top1_pct`` (mean and std over seeds), seconds,
    seeds, and ``front`` (on its panel's Pareto front)."""
    if runs.empty:
        return pd.DataFrame(columns=POINT + ["budget", "gflops", "top1_pct", "top1_pct_std", "seconds", "n_seeds",
                                             "front"])
    grouped = runs.assign(gflops=runs["method_flops"] / 1e9).groupby(POINT + ["budget"], sort=True)
    points = grouped.agg(gflops=("gflops", "mean"), top1_pct=("top1_pct", "mean"), top1_pct_std=("top1_pct", "std"),
                         seconds=("seconds", "mean"), n_seeds=("seed", "nunique")).reset_index()
    points["front"] = False
    for _, panel in points.groupby(SETUP + ["target"], sort=False):
        best = -math.inf
        for index, row in panel.sort_values(["gflops", "top1_pct"], ascending=[True, False]).iterrows():
            if row["top1_pct"] > best:
                points.loc[index, "front"] = True
                best = row["top1_pct"]
    return points


def saturation(ladder: pd.DataFrame) -> float | None:
    """Top-1 gained by the last doubling of a method's compute (points; interpolated on log2 compute when the top
    rung is not exactly twice the one below), None for a ladder of one rung. Below ``SATURATION_POINTS``: saturated."""
    ladder = ladder.sort_values("gflops")
    if len(ladder) < 2:
        return None
    top = ladder.iloc[-1]
    half = top1_at(ladder, top["gflops"] / 2)
    return None if half is None else top["top1_pct"] - half


def top1_at(ladder: pd.DataFrame, gflops: float) -> float | None:
    """A method's top-1 at ``gflops``, interpolated linearly in log compute between its rungs; None outside them."""
    ladder = ladder.sort_values("gflops")
    xs, ys = np.log(ladder["gflops"].to_numpy()), ladder["top1_pct"].to_numpy()
    x = math.log(gflops)
    if len(xs) == 0 or x < xs[0] - 1e-9 or x > xs[-1] + 1e-9:
        return None
    return float(np.interp(x, xs, ys))


def top1_within(ladder: pd.DataFrame, gflops: float) -> float | None:
    """The best top-1 a method reaches with at most ``gflops``: interpolated there when its rungs straddle it, its
    best rung when its whole ladder costs less; None when even its cheapest rung costs more."""
    cheaper = ladder[ladder["gflops"] <= gflops * (1 + 1e-9)]
    if cheaper.empty:
        return None
    at = top1_at(ladder, gflops)
    return max(float(cheaper["top1_pct"].max()), at if at is not None else -math.inf)


def compute_to_match(ladder: pd.DataFrame, top1: float) -> float | None:
    """The least compute (GFLOPs) at which a method's ladder reaches ``top1``, interpolated in log compute between
    the rungs that straddle it; None when no rung does."""
    ladder = ladder.sort_values("gflops").reset_index(drop=True)
    for i, row in ladder.iterrows():
        if row["top1_pct"] >= top1:
            if i == 0:
                return float(row["gflops"])
            below = ladder.iloc[i - 1]
            share = (top1 - below["top1_pct"]) / (row["top1_pct"] - below["top1_pct"])
            return float(math.exp(math.log(below["gflops"]) + share * (math.log(row["gflops"]) -
                                                                       math.log(below["gflops"]))))
    return None
