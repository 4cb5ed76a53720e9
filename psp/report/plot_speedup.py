"""Measured latency speed-up (dense / pruned) against the measured MACs reduction: one row of panels per
dataset/model, one column per runtime and batch size (eager PyTorch on the device the runs used, then ONNX Runtime on
the CPU); each method a curve over the targets (mean over seeds, band = ± 1 std) in its family's colour with its own
marker and line style; the dotted diagonal is a speed-up equal to the MACs reduction. A runtime that timed none of a
setup's runs (e.g. runs timed before ONNX Runtime was measured) leaves its panels saying so."""

import matplotlib.pyplot as plt
from matplotlib.lines import Line2D

from psp.report.plotting import curve, drawn, main_runs_or_placeholder, save_with_legend, styles_of
from psp.report.summaries import start_log

PANELS = {"speedup_b1": "PyTorch, batch 1", "speedup_b64": "PyTorch, batch 64",
          "speedup_b1_ort": "ONNX Runtime, batch 1", "speedup_b64_ort": "ONNX Runtime, batch 64"}
DIAGONAL = {"linestyle": ":", "color": "0.4", "linewidth": 1}


def main(smk) -> None:
    log = start_log(smk.log[0])
    runs = main_runs_or_placeholder(smk)
    if runs is None:
        return
    styles = styles_of(runs, smk.params.design)
    setups = sorted(runs["setup"].unique())
    fig, axes = plt.subplots(len(setups), len(PANELS), figsize=(4.2 * len(PANELS), 3.4 * len(setups)),
                             squeeze=False)
    for row, setup in enumerate(setups):
        part = runs[runs["setup"] == setup]
        for col, (column, panel) in enumerate(PANELS.items()):
            ax = axes[row, col]
            ax.set_title(f"{setup}, {panel}", fontsize=9)
            if part[column].isna().all():
                ax.text(0.5, 0.5, "not timed in this runtime", ha="center", va="center", transform=ax.transAxes)
                continue
            top = max(part["macs_reduction"].max(), part[column].max()) * 1.05
            ax.plot([1, top], [1, top], **DIAGONAL)
            for method, style in styles.items():
                curve(ax, part[part["method"] == method], "macs_reduction", column, style, method)
            ax.set_xlabel("MACs reduction (×, measured)")
            ax.set_ylabel("latency speed-up (×, dense / pruned)")
    save_with_legend(fig, styles, smk.output, [(Line2D([], [], **DIAGONAL), "speed-up = MACs reduction")])
    log.info("plotted %d runs: %s", len(runs), drawn(styles))
