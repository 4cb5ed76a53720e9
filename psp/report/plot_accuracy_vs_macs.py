"""Top-1 against the target MACs reduction: one row of panels per dataset/model and one panel per family (PSP and its
variants, controls, post-training baselines, retraining baselines), each method a curve (mean over seeds, band =
± 1 std) in its family's colour with its own marker and line style. PSP is drawn thin and black in the other
families' panels as the reference, and the unpruned model's top-1 as a dashed grey line."""

import matplotlib.pyplot as plt
from matplotlib.lines import Line2D

from psp.report.plotting import (
    DENSE_LINE,
    PERCENT,
    curve,
    drawn,
    families_present,
    main_runs_or_placeholder,
    save_with_legend,
    styles_of,
)
from psp.report.summaries import start_log

REFERENCE = {"color": "black", "linestyle": "-", "linewidth": 0.8, "marker": None}


def main(smk) -> None:
    log = start_log(smk.log[0])
    runs = main_runs_or_placeholder(smk)
    if runs is None:
        return
    styles = styles_of(runs, smk.params.design)
    families = families_present(styles)
    setups = sorted(runs["setup"].unique())
    fig, axes = plt.subplots(len(setups), len(families), figsize=(3.4 * len(families), 3.0 * len(setups)),
                             sharex=True, sharey="row", squeeze=False)
    for row, setup in enumerate(setups):
        part = runs[runs["setup"] == setup]
        for col, name in enumerate(families):
            ax = axes[row, col]
            ax.axhline(part["top1_dense_pct"].mean(), **DENSE_LINE)
            if "psp" in styles and name != styles["psp"].family:
                curve(ax, part[part["method"] == "psp"], "target", "top1_pct", styles["psp"], "psp", band=False,
                      **REFERENCE)
            for method, style in styles.items():
                if style.family == name:
                    curve(ax, part[part["method"] == method], "target", "top1_pct", style, method)
            ax.set_title(f"{setup}: {name}", fontsize=9)
            ax.set_xticks(sorted(runs["target"].unique()))
            if row == len(setups) - 1:
                ax.set_xlabel("target MACs reduction (×)")
            if col == 0:
                ax.set_ylabel(PERCENT)
    extra = [(Line2D([], [], **DENSE_LINE), "unpruned"), (Line2D([], [], **REFERENCE), "psp (reference)")]
    save_with_legend(fig, styles, smk.output, extra)
    log.info("plotted %d runs: %s", len(runs), drawn(styles))
