"""The comparison table: every method at every target (MACs reductions, then channel ratios), per dataset/model,
over seeds.

Rows are the main runs (the default calibration size; n0 for methods that read no data), grouped by family (PSP and
its variants, controls, post-training baselines each followed by its "+BN" variant, retraining baselines) so that
every control sits beside the method it explains. Top-1 is mean ± standard deviation over seeds in %, Δ is the
change from the unpruned model in points, "vs PSP" the difference to PSP paired by seed with two standard errors,
RP/RF the fractions of parameters and MACs removed, time the pruning wall-clock seconds, speed-up the measured
latency ratio dense / pruned in eager PyTorch and in ONNX Runtime (ORT).
"""

import pandas as pd

from psp.pruning_target import target_text
from psp.report.catalogue import Catalogue, family_rank
from psp.report.summaries import (
    SETUP,
    SPEEDUP_COLUMNS,
    main_runs,
    pm,
    read_runs,
    seed_summary,
    start_log,
    versus_psp,
    with_target_order,
    write_table,
)

SPEEDUPS = dict(zip(SPEEDUP_COLUMNS, ["speed-up b1 ×", "speed-up b64 ×", "ORT speed-up b1 ×", "ORT speed-up b64 ×"],
                    strict=True))
VALUES = ["top1_pct", "top1_dense_pct", "delta_pct", "macs_reduction", "rp_pct", "rf_pct", "seconds", *SPEEDUPS]


def comparison(runs: pd.DataFrame, default_samples: int, catalogue: Catalogue) -> pd.DataFrame:
    runs = main_runs(runs, default_samples).assign(
        delta_pct=lambda r: r["top1_pct"] - r["top1_dense_pct"], rp_pct=lambda r: 100 * r["rp"],
        rf_pct=lambda r: 100 * r["rf"])
    table = seed_summary(runs, SETUP + ["method", "uses", "target_kind", "target", "samples"], VALUES)
    table = versus_psp(table, runs)
    table.insert(2, "family", [catalogue.family(m, u) for m, u in zip(table["method"], table["uses"], strict=True)])
    table["family_rank"] = table["family"].map(family_rank)
    table["method_rank"] = table["method"].map(catalogue.rank)
    table = with_target_order(table).sort_values(
        SETUP + ["target_rank", "family_rank", "method_rank", "top1_pct_mean"],
        ascending=[True, True, True, True, True, False], kind="stable")
    return table.drop(columns=["target_rank", "family_rank", "method_rank"]).reset_index(drop=True)


def display(table: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "dataset": table["dataset"], "model": table["model"], "target": table["target"].map(target_text),
        "family": table["family"], "method": table["method"],
        "MACs ↓ ×": table["macs_reduction_mean"].map("{:.2f}".format),
        "top-1 %": [pm(m, s) for m, s in zip(table["top1_pct_mean"], table["top1_pct_std"], strict=True)],
        "Δ top-1 pts": [pm(m, s) for m, s in zip(table["delta_pct_mean"], table["delta_pct_std"], strict=True)],
        "vs PSP pts (± 2 SE)": ["–" if meth == "psp" else pm(m, 2 * s)
                                for meth, m, s in zip(table["method"], table["vs_psp_mean"], table["vs_psp_se"],
                                                      strict=True)],
        "RP %": table["rp_pct_mean"].map("{:.1f}".format),
        "RF %": table["rf_pct_mean"].map("{:.1f}".format),
        "time s": [pm(m, s, 1) for m, s in zip(table["seconds_mean"], table["seconds_std"], strict=True)],
        **{label: table[f"{column}_mean"].map("{:.2f}".format) for column, label in SPEEDUPS.items()},
        "n": table["samples"].astype(str),
        "seeds": table["n_seeds"].astype(str),
    })


def main(smk) -> None:
    log = start_log(smk.log[0])
    default_samples = smk.params.design["default_samples"]
    table = comparison(read_runs(smk.input.runs), default_samples, Catalogue.of(smk.params.design))
    dense = ", ".join(f"{d} / {m}: {v:.2f} %" for (d, m), v in
                      table.groupby(SETUP)["top1_dense_pct_mean"].first().items())
    note = (f"Top-1 mean ± std over seeds; Δ from the unpruned model (dense top-1 {dense}); vs PSP: method − PSP "
            f"paired by seed ± two standard errors; RP/RF: parameters/MACs removed; time: pruning seconds; speed-up: "
            f"measured latency dense/pruned at batch 1 and 64 in eager PyTorch (the faster of contiguous and "
            f"channels-last per model) and ONNX Runtime (ORT, CPU). "
            f"n = calibration images ({default_samples} for every calibration method, 0 for methods that read no "
            f"data; 'labels' methods read the labeled training split and carry n = {default_samples} as a label).")
    write_table(table, display(table), smk.output, "Comparison of pruning methods", note)
    log.info("comparison: %d rows", len(table))
