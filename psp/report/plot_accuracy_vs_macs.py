"""Top-1 against the target MACs reduction: one row of panels per dataset/model and one panel per family (PSP and its
variants, controls, post-training baselines, retraining baselines), each method a curve (mean over seeds, band =
± 1 std) in its family's colour with its own marker and line style; runs at a channel-ratio target are hollow markers
at the MACs reduction they gave, labelled with the ratio. PSP is drawn thin and black in the other
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
    ratio_points,
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
            asked = part[part["target_kind"] == "macs"]
            if "psp" in styles and name != styles["psp"].family:
                curve(ax, asked[asked["method"] == "psp"], "target", "top1_pct", styles["psp"], "psp", band=False,
                      **REFERENCE)
            for method, style in styles.items():
                if style.family == name:
                    curve(ax, asked[asked["method"] == method], "target", "top1_pct", style, method)
                    ratio_points(ax, part[part["method"] == method], "top1_pct", style)
            ax.set_title(f"{setup}: {name}", fontsize=9)
            ax.set_xticks(sorted(runs.loc[runs["target_kind"] == "macs", "target"].unique()))
            if row == len(setups) - 1:
                ax.set_xlabel("target MACs reduction (×)" if not (runs["target_kind"] == "ratio").any()
                              else "MACs reduction (×): the target, or what a ratio gave")
            if col == 0:
                ax.set_ylabel(PERCENT)
    extra = [(Line2D([], [], **DENSE_LINE), "unpruned"), (Line2D([], [], **REFERENCE), "psp (reference)")]
    if (runs["target_kind"] == "ratio").any():
        extra.append((Line2D([], [], marker="o", linestyle="none", color="0.3", markerfacecolor="white"),
                      "channel ratio rR, at the\nreduction it gave"))
    save_with_legend(fig, styles, smk.output, extra)
    log.info("plotted %d runs: %s", len(runs), drawn(styles))
