"""The calibration-size table: top-1 of the swept methods against the number of calibration images, per
dataset/model and target, mean ± std over seeds (each seed is a different random draw of the images)."""

import pandas as pd

from psp.pruning_target import target_text
from psp.report.summaries import (
    SETUP,
    pm,
    read_runs,
    seed_summary,
    start_log,
    sweep_runs,
    with_target_order,
    write_table,
)


def calibration(runs: pd.DataFrame) -> pd.DataFrame:
    table = seed_summary(runs, SETUP + ["method", "target_kind", "target", "samples"],
                         ["top1_pct", "seconds", "images_seen"])
    table = with_target_order(table).sort_values(SETUP + ["method", "target_rank", "samples"], kind="stable")
    return table.drop(columns="target_rank").reset_index(drop=True)


def display(table: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "dataset": table["dataset"], "model": table["model"], "method": table["method"],
        "target": table["target"].map(target_text), "images": table["samples"].astype(str),
        "top-1 %": [pm(m, s) for m, s in zip(table["top1_pct_mean"], table["top1_pct_std"], strict=True)],
        "top-1 range pts": (table["top1_pct_max"] - table["top1_pct_min"]).map("{:.2f}".format),
        "time s": [pm(m, s, 1) for m, s in zip(table["seconds_mean"], table["seconds_std"], strict=True)],
        "images seen": table["images_seen_mean"].map("{:.0f}".format),
        "seeds": table["n_seeds"].astype(str),
    })


def main(smk) -> None:
    log = start_log(smk.log[0])
    methods = smk.params.design["sweep_methods"]
    runs = sweep_runs(read_runs(smk.input.runs), smk.params.design)
    table = calibration(runs)
    extremes = runs.groupby(SETUP + ["method", "target", "samples"])["top1_pct"]
    table = table.merge(extremes.agg(top1_pct_min="min", top1_pct_max="max").reset_index(),
                        on=SETUP + ["method", "target", "samples"], how="left")
    note = (f"Methods run at every calibration size: {', '.join(methods) or 'none'}. Top-1 mean ± std and range "
            f"(max − min) over seeds, i.e. over random draws of the calibration images; images seen = calibration "
            f"images × epochs.")
    write_table(table, display(table), smk.output, "Accuracy against the number of calibration images", note)
    log.info("calibration: %d rows", len(table))
