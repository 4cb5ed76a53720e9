"""Top-1 against the target MACs reduction, one line per method (mean over seeds, band = ± 1 std), one panel per
dataset/model, with the unpruned model's top-1 as a dashed line."""

import seaborn as sns
from plotting import PERCENT, main_runs_or_placeholder, save
from summaries import start_log


def main(smk) -> None:
    log = start_log(smk.log[0])
    runs = main_runs_or_placeholder(smk)
    if runs is None:
        return
    grid = sns.relplot(data=runs, x="target", y="top1_pct", hue="method", style="method", col="setup", kind="line",
                       markers=True, dashes=False, errorbar="sd", col_wrap=min(3, runs["setup"].nunique()),
                       height=3.6, aspect=1.2, facet_kws={"sharey": False})
    for setup, ax in grid.axes_dict.items():
        ax.axhline(runs.loc[runs["setup"] == setup, "top1_dense_pct"].mean(), color="0.3", ls="--", lw=1,
                   label="unpruned")
    grid.set_axis_labels("target MACs reduction (×, dense / pruned)", PERCENT)
    grid.set_titles("{col_name}")
    save(grid.figure, smk.output)
    log.info("plotted %d runs", len(runs))


if __name__ == "__main__":
    main(snakemake)  # noqa: F821  (injected by Snakemake's script directive)
