"""Top-1 against the number of calibration images for the swept methods: mean over seeds with a ± 1 std band (each
seed is another random draw), one panel per target and dataset/model; log-2 image axis; the dashed line is the
unpruned model."""

import matplotlib.pyplot as plt
from matplotlib.lines import Line2D
from matplotlib.ticker import NullFormatter, ScalarFormatter

from psp.pruning_target import target_text
from psp.report.plotting import (
    DENSE_LINE,
    PERCENT,
    curve,
    drawn,
    save_with_legend,
    styles_of,
    sweep_runs_or_placeholder,
)
from psp.report.summaries import start_log


def main(smk) -> None:
    log = start_log(smk.log[0])
    runs = sweep_runs_or_placeholder(smk)
    if runs is None:
        return
    styles = styles_of(runs, smk.params.design)
    setups, targets = sorted(runs["setup"].unique()), sorted(runs["target"].unique())
    sizes = sorted(runs["samples"].unique())
    fig, axes = plt.subplots(len(setups), len(targets), figsize=(4.2 * len(targets), 3.2 * len(setups)),
                             squeeze=False)
    for row, setup in enumerate(setups):
        for col, target in enumerate(targets):
            ax = axes[row, col]
            part = runs[(runs["setup"] == setup) & (runs["target"] == target)]
            ax.axhline(part["top1_dense_pct"].mean(), **DENSE_LINE)
            for method, style in styles.items():
                curve(ax, part[part["method"] == method], "samples", "top1_pct", style, method, by="samples")
            ax.set_xscale("log", base=2)
            ax.set_xticks(sizes)
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_title(f"{setup}, target {target_text(target)}", fontsize=9)
            ax.set_xlabel("calibration images (count, log scale)")
            ax.set_ylabel(PERCENT)
    save_with_legend(fig, styles, smk.output, [(Line2D([], [], **DENSE_LINE), "unpruned")])
    log.info("plotted %d runs: %s", len(runs), drawn(styles))
