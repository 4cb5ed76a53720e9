"""Accuracy against compute: one panel per dataset/model and target, top-1 (mean over seeds) against the FLOPs each
method executed (log axis), each method a line along its budget ladder in its family's style, its own budget (the
main tables' run) a larger filled marker, the Pareto front a black step line. The same points as the compute table."""

import matplotlib.pyplot as plt
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from psp.pruning_target import target_text
from psp.report.catalogue import Catalogue
from psp.report.ladders import ladder_points, ladder_runs
from psp.report.plotting import DENSE_LINE, PERCENT, drawn, method_styles, placeholder, save_with_legend
from psp.report.summaries import SETUP, read_runs, start_log

FRONT = {"color": "black", "linewidth": 1.0, "linestyle": "-", "alpha": 0.6}


def main(smk) -> None:
    log = start_log(smk.log[0])
    design = smk.params.design
    runs = ladder_runs(read_runs(smk.input.runs, ladders=True), design)
    points = ladder_points(runs)
    if points.empty:
        placeholder(smk.output, "no runs with counted compute at the budget targets in this configuration")
        return
    uses = runs.drop_duplicates("method").set_index("method")["uses"].to_dict()
    styles = method_styles(uses, Catalogue.of(design))
    panels = list(points.groupby(SETUP + ["target"], sort=True))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.6), squeeze=False)
    for ax, ((dataset, model, target), panel) in zip(axes[0], panels, strict=True):
        dense = runs[(runs["dataset"] == dataset) & (runs["model"] == model)]["top1_dense_pct"].mean()
        ax.axhline(dense, **DENSE_LINE)
        for method, style in styles.items():
            ladder = panel[panel["method"] == method].sort_values("gflops")
            if ladder.empty:
                continue
            ax.plot(ladder["gflops"], ladder["top1_pct"], markersize=4, linewidth=1.2, **style.line())
            own = ladder[ladder["budget"] == 1]
            ax.plot(own["gflops"], own["top1_pct"], linestyle="none", marker=style.marker, markersize=9,
                    color=style.colour, markeredgecolor="black", markeredgewidth=0.6)
        front = panel[panel["front"]].sort_values("gflops")
        ax.step(front["gflops"], front["top1_pct"], where="post", **FRONT)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))  # readable within one decade too
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(f"{dataset} / {model}, target {target_text(target)}", fontsize=9)
        ax.set_xlabel("compute the method executed (GFLOPs, log)")
        ax.set_ylabel(PERCENT)
    extra = [(Line2D([], [], **DENSE_LINE), "unpruned"), (Line2D([], [], **FRONT), "Pareto front"),
             (Line2D([], [], marker="o", markersize=9, linestyle="none", color="0.5", markeredgecolor="black"),
              "own budget (main tables)")]
    save_with_legend(fig, styles, smk.output, extra)
    log.info("plotted %d points of %d runs: %s", len(points), len(runs), drawn(styles))
