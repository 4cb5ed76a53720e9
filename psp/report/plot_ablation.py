"""Bars of top-1 for PSP, its ablations and the controls at each target (mean over seeds, error bar = ± 1 std), one
panel per dataset/model."""

import seaborn as sns

from psp.pruning_target import target_text
from psp.report.catalogue import Catalogue
from psp.report.plotting import PERCENT, placeholder, save
from psp.report.summaries import main_runs, read_runs, start_log
from psp.report.tabulate_ablation import ablation_methods


def main(smk) -> None:
    log = start_log(smk.log[0])
    runs = main_runs(read_runs(smk.input.runs), smk.params.design["default_samples"])
    methods = ablation_methods(Catalogue.of(smk.params.design))
    runs = runs[runs["method"].isin(methods)]
    if runs.empty:
        placeholder(smk.output, "no PSP ablation or control in this configuration")
        return
    order = [m for m in methods if m in set(runs["method"])]
    runs = runs.assign(target_label=runs["target"].map(target_text))
    grid = sns.catplot(data=runs, x="method", y="top1_pct", hue="target_label", col="setup", kind="bar", order=order,
                       errorbar="sd", col_wrap=min(2, runs["setup"].nunique()), height=3.8, aspect=1.5,
                       sharey=False)
    grid.set_axis_labels("", PERCENT)
    grid.set_titles("{col_name}")
    grid.legend.set_title("MACs reduction")
    for ax in grid.axes.flat:  # eleven long names: slanted, anchored at their right end
        for label in ax.get_xticklabels():
            label.set_rotation(40)
            label.set_horizontalalignment("right")
    save(grid.figure, smk.output)
    log.info("plotted %d runs: %s", len(runs), ", ".join(order))
