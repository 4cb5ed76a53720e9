"""Measured latency speed-up (dense / pruned, CPU or GPU as run) against the measured MACs reduction, every run a
point, one panel per batch size and dataset/model; the dotted diagonal is a speed-up equal to the MACs reduction."""

import seaborn as sns
from plotting import main_runs_or_placeholder, save
from summaries import start_log


def main(smk) -> None:
    log = start_log(smk.log[0])
    runs = main_runs_or_placeholder(smk)
    if runs is None:
        return
    long = runs.melt(id_vars=["setup", "method", "macs_reduction"], value_vars=["speedup_b1", "speedup_b64"],
                     var_name="batch", value_name="speedup")
    long["batch"] = long["batch"].map({"speedup_b1": "batch 1", "speedup_b64": "batch 64"})
    grid = sns.relplot(data=long, x="macs_reduction", y="speedup", hue="method", style="method", col="batch",
                       row="setup", kind="scatter", height=3.2, aspect=1.1, s=40)
    for ax in grid.axes.flat:
        top = max(long["macs_reduction"].max(), long["speedup"].max()) * 1.05
        ax.plot([1, top], [1, top], ls=":", color="0.4", lw=1)
    grid.set_axis_labels("MACs reduction (×, measured)", "latency speed-up (×, dense / pruned)")
    grid.set_titles("{row_name}, {col_name}")
    save(grid.figure, smk.output)
    log.info("plotted %d runs", len(runs))


if __name__ == "__main__":
    main(snakemake)  # noqa: F821  (injected by Snakemake's script directive)
