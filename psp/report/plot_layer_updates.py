"""Per-layer update magnitude in PSP's phase 2 (relative weight change ‖W_after − W_before‖ / ‖W_before‖ of each
conv/linear layer, module order) for psp (balanced learning rates) and psp_no_balance (one rate): mean over seeds,
band = ± 1 std, one panel per target and dataset/model."""

import seaborn as sns

from psp.pruning_target import target_text
from psp.report.plotting import placeholder, save
from psp.report.summaries import read_layers, start_log


def main(smk) -> None:
    log = start_log(smk.log[0])
    layers = read_layers(smk.input.layers)
    layers = layers[layers["method"].isin(["psp", "psp_no_balance"])
                    & (layers["samples"] == smk.params.design["default_samples"])]
    if layers.empty:
        placeholder(smk.output, "no per-layer weight change (psp / psp_no_balance) in this configuration")
        return
    layers = layers.assign(setup=layers["dataset"] + " / " + layers["model"],
                           target_label=layers["target"].map(lambda t: f"target {target_text(t)}"))
    grid = sns.relplot(data=layers, x="layer_index", y="relative_change", hue="method", style="method",
                       col="target_label", row="setup", kind="line", markers=True, dashes=False, errorbar="sd",
                       height=3.2, aspect=1.2, facet_kws={"sharey": False})
    for ax in grid.axes.flat:
        ax.set_yscale("log")
    grid.set_axis_labels("layer index (module order, 0 = first)", "relative weight change in phase 2 (log)")
    grid.set_titles("{row_name}, {col_name}")
    save(grid.figure, smk.output)
    log.info("plotted %d layer rows", len(layers))
