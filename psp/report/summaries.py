"""Shared by the table, claim and figure reports: the collected runs, summaries over seeds and table writing."""

import logging
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from psp.pruning_target import PruningTarget

ID_COLUMNS = ["dataset", "model", "method", "target", "samples", "seed", "budget"]
SETUP = ["dataset", "model"]


def start_log(path: str) -> logging.Logger:
    """Send stderr and the logging output to the rule's log file."""
    sys.stderr = open(path, "w")  # noqa: SIM115  (lives as long as the script)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr, force=True)
    return logging.getLogger("workflow")


# Measured speed-ups dense / pruned: eager PyTorch, then ONNX Runtime, at batch 1 and 64.
SPEEDUP_COLUMNS = ["speedup_b1", "speedup_b64", "speedup_b1_ort", "speedup_b64_ort"]


def read_runs(path: str, ladders: bool = False) -> pd.DataFrame:
    """A runs.csv with percent and setup columns; speed-up columns that runs timed before ONNX Runtime lack are
    empty (NaN), so tables and figures show them as not measured. Only the runs at each method's own budget
    (``budget`` 1) unless ``ladders``: the rungs of the budget ladders are for the compute figures and verdicts."""
    runs = pd.read_csv(path)
    runs = with_run_identity(runs)
    if not ladders:
        runs = own_budget(runs)
    for column in SPEEDUP_COLUMNS:
        if column not in runs.columns:
            runs[column] = float("nan")
    runs["top1_pct"] = 100 * runs["top1"]
    runs["top1_dense_pct"] = 100 * runs["top1_dense"]
    runs["setup"] = runs["dataset"] + " / " + runs["model"]
    return runs


def read_layers(path: str) -> pd.DataFrame:
    """A layer_updates.csv (per-layer weight change of the PSP variants) at every method's own budget only: a
    ladder's rungs train for other epochs, so their updates are not the method's. A table made before budget
    ladders has no ``budget`` column; its runs were all at their own budget."""
    return own_budget(with_budget(pd.read_csv(path)))


def with_budget(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with ``budget`` 1 where it is missing: rows made before budget ladders ran at their own budget."""
    return frame.assign(budget=frame["budget"].fillna(1.0) if "budget" in frame.columns else 1.0)


def run_keys(frame: pd.DataFrame) -> pd.Series:
    """One string per row naming its run (the identity columns), equal for the same run in any runs.csv or
    layer_updates.csv."""
    return frame[ID_COLUMNS].astype({"budget": float}).astype(str).apply("/".join, axis=1)


def with_run_identity(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with the identity columns that older runs.csv files lack, filled as those runs were made: ``budget``
    1 (before budget ladders) and ``target_kind`` from the target's value (before ratio targets). Rows joined from
    such a file into a newer one (``previous_runs``) have them empty, and are filled the same way."""
    runs = with_budget(runs)
    if "target_kind" not in runs.columns:
        runs["target_kind"] = None
    missing = runs["target_kind"].isna()
    runs.loc[missing, "target_kind"] = [PruningTarget.of_value(t).kind for t in runs.loc[missing, "target"]]
    return runs


def own_budget(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs at their method's own budget (1): the main tables' runs, without the ladders' other rungs."""
    return runs[runs["budget"] == 1].reset_index(drop=True)


def main_runs(runs: pd.DataFrame, default_samples: int) -> pd.DataFrame:
    """The runs of the main tables: every method at the default calibration size (n0 for methods reading no data)."""
    return runs[(runs["uses"] == "none") | (runs["samples"] == default_samples)]


def with_target_order(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with ``target_rank``: MACs targets first (ascending), then ratio targets, for sorting rows."""
    return table.assign(target_rank=table["target"] + 1e6 * (table["target"] < 1))


def sweep_runs(runs: pd.DataFrame, design: dict) -> pd.DataFrame:
    """The runs of the calibration-size study: the sweep methods at the sweep targets."""
    targets = [PruningTarget.parse(t).value for t in design.get("sweep_targets", design["targets"])]
    return runs[runs["method"].isin(design["sweep_methods"]) & runs["target"].isin(targets)]


def seed_summary(runs: pd.DataFrame, by: list[str], columns: list[str]) -> pd.DataFrame:
    """Per group: ``n_seeds`` and, for each column, ``<column>_mean`` and ``<column>_std`` (sample std, ddof 1)."""
    grouped = runs.groupby(by, sort=True, dropna=False)
    out = grouped.size().rename("n_seeds").to_frame()
    for column in columns:
        out[f"{column}_mean"] = grouped[column].mean()
        out[f"{column}_std"] = grouped[column].std(ddof=1)
    return out.reset_index()


def mean_se(values: pd.Series) -> dict:
    """Mean, standard error and count of per-seed values (differences already paired by seed)."""
    return {"diff": float(values.mean()), "se": float(values.std(ddof=1) / math.sqrt(len(values))),
            "n": int(len(values)), "paired": True}


def paired_difference(a: pd.DataFrame, b: pd.DataFrame, column: str) -> dict:
    """Mean of ``a - b`` over the seeds both have (paired by seed), its standard error and the seed count; unpaired
    (Welch) when they share fewer than two seeds."""
    x, y = a.set_index("seed")[column], b.set_index("seed")[column]
    common = x.index.intersection(y.index)
    if len(common) >= 2:
        return mean_se(x[common] - y[common])
    if len(x) == 0 or len(y) == 0:
        return {"diff": math.nan, "se": math.nan, "n": 0, "paired": False}
    se = math.sqrt((x.var(ddof=1) if len(x) > 1 else math.nan) / len(x)
                   + (y.var(ddof=1) if len(y) > 1 else math.nan) / len(y))
    return {"diff": float(x.mean() - y.mean()), "se": se, "n": int(min(len(x), len(y))), "paired": False}


def versus_psp(table: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """``table`` (one row per dataset, model, target and method) with ``vs_psp_mean``/``vs_psp_se``: method − PSP
    in top-1 points, paired by seed."""
    diffs = []
    for row in table.itertuples():
        group = runs[(runs["dataset"] == row.dataset) & (runs["model"] == row.model) & (runs["target"] == row.target)]
        d = paired_difference(group[group["method"] == row.method], group[group["method"] == "psp"], "top1_pct")
        diffs.append({"vs_psp_mean": d["diff"], "vs_psp_se": d["se"]})
    return pd.concat([table, pd.DataFrame(diffs, index=table.index)], axis=1)


def pm(mean: float, std: float, digits: int = 2, sep: str = " ± ") -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f}{sep}{std:.{digits}f}"


def _latex_escape(text: object) -> str:
    s = str(text)
    for char, repl in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                       ("±", r"$\pm$"), ("×", r"$\times$"), ("Δ", r"$\Delta$"), ("↓", r"$\downarrow$"),
                       ("−", r"$-$"), ("–", "--"), ("…", r"\dots{}"), ("→", r"$\to$")):
        s = s.replace(char, repl)
    return s


def write_table(numbers: pd.DataFrame, display: pd.DataFrame, outputs, title: str, note: str) -> None:
    """Write ``numbers`` as tidy CSV and ``display`` (formatted strings, with ``dataset``/``model`` columns) as one
    Markdown and one LaTeX booktabs table per dataset/model."""
    numbers.to_csv(outputs.csv, index=False, float_format="%.6g")
    md = [f"# {title}", "", note, ""]
    tex = [f"% {title}. Generated by the psp-bench workflow; do not edit.", ""]
    if display.empty:
        md.append("No runs for this table in this configuration.")
        tex.append("% No runs for this table in this configuration.")
    for (dataset, model), part in display.groupby(SETUP, sort=True):
        body = part.drop(columns=SETUP)
        md += [f"## {dataset} / {model}", "", body.to_markdown(index=False, disable_numparse=True), ""]
        escaped = body.map(_latex_escape)
        escaped.columns = [_latex_escape(c) for c in body.columns]
        caption = _latex_escape(f"{title}: {dataset} / {model}. {note}")
        tex.append(escaped.to_latex(index=False, escape=False, caption=caption,
                                    label=f"tab:{Path(outputs.tex).stem}-{dataset}-{model}",
                                    column_format="l" * len(body.columns)))
    Path(outputs.md).write_text("\n".join(md).rstrip() + "\n")
    Path(outputs.tex).write_text("\n".join(tex).rstrip() + "\n")


def finite(values) -> list[float]:
    return [float(v) for v in values if v is not None and np.isfinite(v)]
