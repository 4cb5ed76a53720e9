"""The compute table: every method along its budget ladder, per dataset/model and target: the FLOPs it executed
(counted as it ran), its time and top-1 (mean ± std over seeds), whether the point is on the Pareto front (no other
point is as accurate at equal or lower compute), and which rung is the method's own budget (the main tables' run).
The same points as the compute figure."""

import pandas as pd

from psp.pruning_target import target_text
from psp.report.catalogue import Catalogue
from psp.report.ladders import SATURATION_POINTS, ladder_points, ladder_runs, saturation
from psp.report.summaries import SETUP, pm, read_runs, start_log, write_table


def compute_table(points: pd.DataFrame, catalogue: Catalogue) -> pd.DataFrame:
    """The points in table order: setup, target, method (by family), budget; on each ladder's top rung,
    ``last_doubling``: the top-1 its last doubling of compute gained (saturated below ``SATURATION_POINTS``)."""
    table = points.assign(rank=points["method"].map(catalogue.rank),
                          family=[catalogue.family(m, "calibration") for m in points["method"]],
                          last_doubling=float("nan"))
    for _, ladder in table.groupby(SETUP + ["target", "method"], sort=False):
        gain = saturation(ladder)
        if gain is not None:
            table.loc[ladder["gflops"].idxmax(), "last_doubling"] = gain
    return table.sort_values(SETUP + ["target", "rank", "budget"], kind="stable").drop(columns="rank")


def display(table: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "dataset": table["dataset"], "model": table["model"], "target": table["target"].map(target_text),
        "method": table["method"], "family": table["family"],
        "budget": [f"×{b:g}" + (" (own)" if b == 1 else "") for b in table["budget"]],
        "compute GFLOPs": table["gflops"].map("{:.3g}".format),
        "time s": table["seconds"].map("{:.1f}".format),
        "top-1 %": [pm(m, s) for m, s in zip(table["top1_pct"], table["top1_pct_std"].fillna(0.0), strict=True)],
        "Pareto front": table["front"].map({True: "yes", False: ""}),
        "last doubling": [("" if pd.isna(g) else f"{g:+.2f} pts" + (" (rising)" if g >= SATURATION_POINTS else ""))
                          for g in table["last_doubling"]],
        "seeds": table["n_seeds"].astype(str),
    })


def main(smk) -> None:
    log = start_log(smk.log[0])
    design = smk.params.design
    points = ladder_points(ladder_runs(read_runs(smk.input.runs, ladders=True), design))
    table = compute_table(points, Catalogue.of(design))
    note = ("Compute: the floating-point operations each method executed while pruning (forward and backward "
            "convolutions and matrix products, counted as they ran; mean over seeds). Budget: the multiple of the "
            "method's own epochs (psp list); ×1 is the run of the main tables. Pareto front: no other point is as "
            "accurate at equal or lower compute. Last doubling: on a ladder's top rung, the top-1 its last doubling of "
            f"compute gained; {SATURATION_POINTS} points or more is still rising (the verdicts it enters are "
            "budget-limited).")
    write_table(table, display(table), smk.output, "Accuracy against compute (budget ladders)", note)
    log.info("compute: %d points, %d on the front", len(table), int(table["front"].sum()) if len(table) else 0)
