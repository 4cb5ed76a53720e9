"""Top-1 against the number of calibration images for the swept methods: mean over seeds with a ± 1 std band (each
seed is another random draw), one panel per target and dataset/model; log-2 image axis."""

import seaborn as sns
from matplotlib.ticker import NullFormatter, ScalarFormatter
from plotting import PERCENT, placeholder, save
from summaries import read_runs, start_log, sweep_runs


def main(smk) -> None:
    log = start_log(smk.log[0])
    runs = sweep_runs(read_runs(smk.input.runs), smk.params.design)
    if runs.empty or runs["samples"].nunique() < 2:
        placeholder(smk.output, "no calibration-size study in this configuration (sweep_methods / samples)")
        return
    runs = runs.assign(target_label=runs["target"].map("target {:g}×".format))
    grid = sns.relplot(data=runs, x="samples", y="top1_pct", hue="method", style="method", col="target_label",
                       row="setup", kind="line", markers=True, dashes=False, errorbar="sd", height=3.2, aspect=1.1,
                       facet_kws={"sharey": False})
    sizes = sorted(runs["samples"].unique())
    for ax in grid.axes.flat:
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes)
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
    grid.set_axis_labels("calibration images (count, log scale)", PERCENT)
    grid.set_titles("{row_name}, {col_name}")
    save(grid.figure, smk.output)
    log.info("plotted %d runs", len(runs))


if __name__ == "__main__":
    main(snakemake)  # noqa: F821  (injected by Snakemake's script directive)
