"""What the calibration-size study costs: the method's own seconds and the job's peak resident memory against the
number of calibration images, for the swept methods (mean over seeds, band = ± 1 std), one row per dataset/model.
A least-squares line (seconds = a + b · images) per method and target shows whether time grows linearly."""

import matplotlib.pyplot as plt
import numpy as np

from psp.pruning_target import target_text
from psp.report.plotting import curve, drawn, save_with_legend, styles_of, sweep_runs_or_placeholder
from psp.report.summaries import start_log

PANELS = {"seconds": "pruning time (s, the method alone)", "max_rss_mib": "peak memory of the job (MiB)"}


def main(smk) -> None:
    log = start_log(smk.log[0])
    runs = sweep_runs_or_placeholder(smk)
    if runs is None:
        return
    runs = runs.assign(max_rss_mib=runs.get("max_rss_mib"))  # absent in runs collected without benchmarks
    styles = styles_of(runs, smk.params.design)
    setups = sorted(runs["setup"].unique())
    fig, axes = plt.subplots(len(setups), len(PANELS), figsize=(4.4 * len(PANELS), 3.3 * len(setups)),
                             squeeze=False)
    for row, setup in enumerate(setups):
        for col, (column, label) in enumerate(PANELS.items()):
            ax = axes[row, col]
            groups = runs[runs["setup"] == setup].groupby(["method", "target"], sort=True)
            for k, ((method, target), part) in enumerate(groups):
                at = target_text(target)
                if part[column].notna().sum() == 0:
                    continue
                curve(ax, part, "samples", column, styles[method], method, by="samples")
                if column == "seconds":
                    slope, intercept = np.polyfit(part["samples"], part["seconds"], 1)
                    xs = np.array([0, part["samples"].max()])
                    ax.plot(xs, intercept + slope * xs, color=styles[method].colour, linewidth=0.8, linestyle=":")
                    ax.annotate(f"{method} {at}: {intercept:.0f} s + {1000 * slope:.0f} s per 1,000 images",
                                (0.03, 0.95 - 0.08 * k), xycoords="axes fraction", fontsize=7, va="top")
                    log.info("%s %s %s: seconds = %.1f + %.4f · images", setup, method, at, intercept, slope)
            ax.set_title(setup, fontsize=9)
            ax.set_xlabel("calibration images (count)")
            ax.set_ylabel(label)
            ax.set_xlim(left=0)
            ax.set_ylim(bottom=0)
    save_with_legend(fig, styles, smk.output)
    log.info("plotted %d runs: %s", len(runs), drawn(styles))
