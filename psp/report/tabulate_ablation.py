"""The ablation table: PSP against its ablations and the controls (the PSP and control families, in table order,
each described by its registered summary), per dataset/model and target.

Each row is one method at the default calibration size: top-1 mean ± std over seeds, and its difference to PSP
(method − PSP, paired by seed) with two standard errors.
"""

import pandas as pd

from psp.pruning_target import target_text
from psp.report.catalogue import Catalogue
from psp.report.summaries import (
    SETUP,
    main_runs,
    pm,
    read_runs,
    seed_summary,
    start_log,
    versus_psp,
    with_target_order,
    write_table,
)


def ablation_methods(catalogue: Catalogue) -> list[str]:
    """PSP, its ablations and the controls that explain them, in table order."""
    return catalogue.members("PSP") + catalogue.members("control")


def ablation(runs: pd.DataFrame, default_samples: int, catalogue: Catalogue) -> pd.DataFrame:
    methods = ablation_methods(catalogue)
    runs = main_runs(runs, default_samples)
    runs = runs[runs["method"].isin(methods)]
    table = seed_summary(runs, SETUP + ["target_kind", "target", "method"], ["top1_pct", "seconds"])
    table = versus_psp(table, runs)
    table["order"] = table["method"].map(methods.index)
    table = with_target_order(table).sort_values(SETUP + ["target_rank", "order"], kind="stable")
    table = table.drop(columns=["target_rank", "order"])
    return table.reset_index(drop=True)


def display(table: pd.DataFrame, catalogue: Catalogue) -> pd.DataFrame:
    return pd.DataFrame({
        "dataset": table["dataset"], "model": table["model"], "target": table["target"].map(target_text),
        "method": table["method"], "what it is": table["method"].map(catalogue.summary),
        "top-1 %": [pm(m, s) for m, s in zip(table["top1_pct_mean"], table["top1_pct_std"], strict=True)],
        "Δ vs PSP pts (± 2 SE)": ["–" if meth == "psp" else pm(m, 2 * s)
                                  for meth, m, s in zip(table["method"], table["vs_psp_mean"], table["vs_psp_se"],
                                                        strict=True)],
        "time s": [pm(m, s, 1) for m, s in zip(table["seconds_mean"], table["seconds_std"], strict=True)],
        "seeds": table["n_seeds"].astype(str),
    })


def main(smk) -> None:
    log = start_log(smk.log[0])
    default_samples = smk.params.design["default_samples"]
    catalogue = Catalogue.of(smk.params.design)
    table = ablation(read_runs(smk.input.runs), default_samples, catalogue)
    note = (f"Top-1 mean ± std over seeds at {default_samples} calibration images; Δ vs PSP = method − PSP paired by "
            f"seed, ± two standard errors (a difference is significant when |Δ| exceeds it).")
    write_table(table, display(table, catalogue), smk.output, "Ablations and controls of PSP", note)
    log.info("ablation: %d rows", len(table))
