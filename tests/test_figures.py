"""The figures (psp.report.plot_*) on synthetic runs: every figure is drawn from curves over three
targets and six calibration sizes, and every method's look follows its family."""

import logging
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from psp.options import FAMILIES
from psp.registry import catalogue
from psp.report import (
    plot_accuracy_vs_macs,
    plot_accuracy_vs_samples,
    plot_calibration_cost,
    plot_speedup,
    plot_verdicts,
)
from psp.report.catalogue import Catalogue
from psp.report.plotting import method_styles

USES = {"oneshot_ft": "labels", "l1": "labels", "oneshot": "none", "neuron_merging": "none", "dense_bn": "none"}
METHODS = ["psp", "psp_no_balance", "oneshot_kd", "oneshot", "dense_bn", "gap_bn", "neuron_merging", "l1",
           "outside_method"]
TARGETS, SIZES, SEEDS = [1.5, 2.1, 3.0, 0.5], [128, 256, 512, 1024, 2048, 5120], [0, 1, 2]  # 0.5: ratio r0.5
DESIGN = {"default_samples": 512, "sweep_methods": ["psp"], "sweep_targets": ["2.1"], "targets": ["1.5", "2.1", "3.0"],
          "catalogue": catalogue()}


@pytest.fixture(autouse=True)
def _script_logging(monkeypatch):
    """The scripts send stderr and the root logger to their rule's log file; put both back afterwards."""
    root = logging.getLogger()
    monkeypatch.setattr(sys, "stderr", sys.stderr)
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)


def _runs() -> pd.DataFrame:
    rows = []
    for method in METHODS:
        uses = USES.get(method, "calibration")
        for target in TARGETS:
            for samples in SIZES if method == "psp" and target == 2.1 else [0 if uses == "none" else 512]:
                for seed in SEEDS:
                    rows.append({"dataset": "d", "model": "net", "method": method, "target": target,
                                 "samples": samples, "seed": seed, "uses": uses,
                                 "top1": 0.9 - 0.1 * target + 0.01 * seed,
                                 "top1_dense": 0.93,
                                 "macs_reduction": (target if target > 1 else 3.6) * (1 + 0.01 * seed),
                                 "speedup_b1": 0.6 * target, "speedup_b64": 0.9 * target,
                                 "speedup_b1_ort": 0.7 * target, "speedup_b64_ort": 0.95 * target,
                                 "seconds": 5 + 0.1 * samples + seed, "max_rss_mib": 900 + 0.2 * samples})
    return pd.DataFrame(rows)


def _smk(tmp_path: Path, name: str, inputs: Path) -> SimpleNamespace:
    out = tmp_path / name
    return SimpleNamespace(input=SimpleNamespace(runs=str(inputs), claims=str(inputs)),
                           output=SimpleNamespace(png=f"{out}.png", pdf=f"{out}.pdf"),
                           log=[str(tmp_path / f"{name}.log")],
                           params=SimpleNamespace(design=DESIGN))


@pytest.mark.parametrize("script", [plot_accuracy_vs_macs, plot_speedup, plot_accuracy_vs_samples,
                                    plot_calibration_cost])
def test_curve_figures_are_drawn(script, tmp_path):
    runs = tmp_path / "runs.csv"
    _runs().to_csv(runs, index=False)
    script.main(_smk(tmp_path, "figure", runs))
    log = (tmp_path / "figure.log").read_text()
    assert "plotted" in log, log
    assert (tmp_path / "figure.png").stat().st_size > 10_000 and (tmp_path / "figure.pdf").stat().st_size > 0


def test_speedup_figure_draws_runs_timed_before_onnx_runtime(tmp_path):
    """Runs from before ONNX Runtime was timed (no *_ort columns, e.g. an older previous_runs file) still plot: their
    ONNX Runtime panels say so instead of failing."""
    runs = tmp_path / "runs.csv"
    _runs().drop(columns=["speedup_b1_ort", "speedup_b64_ort"]).to_csv(runs, index=False)
    plot_speedup.main(_smk(tmp_path, "figure", runs))
    assert "plotted" in (tmp_path / "figure.log").read_text()
    assert (tmp_path / "figure.png").stat().st_size > 10_000


def test_verdict_figure_shows_every_category(tmp_path):
    claims = pd.DataFrame([
        {"dataset": "d", "model": m, "claim": c, "verdict": v, "budget_limited": b, "category": k}
        for m in ["a", "b"]
        for c, v, b, k in [("C1", "holds", False, "holds"), ("C2", "holds", True, "budget-limited"),
                           ("C3", "does not hold (opposite)", False, "opposite"),
                           ("C4", "does not hold (not significant)", False, "not significant"),
                           ("C5", "mixed (1 of 2 comparisons hold)", False, "mixed"),
                           ("C6", "not run", False, "not run")]])
    path = tmp_path / "claims.csv"
    claims.to_csv(path, index=False)
    plot_verdicts.main(_smk(tmp_path, "verdicts", path))
    assert (tmp_path / "verdicts.png").stat().st_size > 10_000
    assert plot_verdicts.short("mixed (1 of 2 comparisons hold)", False) == "mixed 1/2"
    assert plot_verdicts.short("does not hold (opposite)", True) == "opposite\n(budget-limited)"


def test_one_colour_per_family_and_one_look_per_method():
    known = Catalogue(DESIGN["catalogue"])
    styles = method_styles({m: USES.get(m, "calibration") for m in METHODS}, known)
    for name in FAMILIES:
        present = [m for m in known.members(name) if m in styles]
        looks = {(styles[m].marker, str(styles[m].linestyle)) for m in present}
        assert len(looks) == len(present), name  # members told apart by marker and line style
        assert all(styles[m].family == name for m in present)
    first = {name: styles[next(m for m in known.members(name) if m in styles)].colour for name in FAMILIES}
    assert len(set(first.values())) == len(FAMILIES)  # each family its own hue
    assert styles["outside_method"].family == "post-training"  # an outside calibration method
