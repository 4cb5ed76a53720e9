"""Collect every run's metrics.json into one tidy CSV (one row per run), and the per-layer weight change that PSP
variants write beside it (weight_change.csv) into another.

Latency (eager PyTorch and ONNX Runtime) comes from the measure_latency jobs, which timed every model alone on the
machine. ``max_rss_mib`` is the run's peak resident memory as its process measured it (``peak_rss_mib``), or for runs
made before that was recorded, the peak of the pruning job that made it, from Snakemake's benchmark file (empty for
runs made without one).

The identity columns (dataset, model, method, target, samples, seed, budget) come from the path (``target`` as a
number: a MACs reduction above 1 or a channel ratio below 1, its kind in ``target_kind``; ``budget``: the multiple
of the method's epochs, 1 outside the budget ladders); metrics that would clash
are renamed: ``model`` (the architecture) -> ``arch``, ``data`` -> ``data_spec``, ``samples`` (images actually drawn,
0 for methods that read none) -> ``samples_drawn``. The run's settings become ``settings.<name>`` columns.

Rows of ``previous_runs`` files (earlier designs' runs.csv) join after this design's, each naming its file in
``reused_from`` (empty for the runs made here), unless this design made the same run. A joined run's per-layer rows
come from the layer_updates.csv beside the runs.csv it joined from, where one was kept (a reference commits both), so
the claims judge C5 on joined runs as on runs made here.
"""

import json
from pathlib import Path

import pandas as pd

from psp.pruning_target import PruningTarget
from psp.report.summaries import ID_COLUMNS, run_keys, start_log, with_budget, with_run_identity

RENAMED = {"model": "arch", "data": "data_spec", "samples": "samples_drawn"}


def flatten(metrics: dict) -> dict:
    row = {}
    for key, value in metrics.items():
        if key == "settings":
            row |= {f"settings.{k}": v for k, v in sorted(value.items())}
        elif isinstance(value, dict | list):
            row[key] = json.dumps(value, sort_keys=True)
        else:
            row[RENAMED.get(key, key)] = value
    return row


def with_latency_alone(runs: pd.DataFrame, alone: pd.DataFrame) -> pd.DataFrame:
    """Latency timed while the job ran beside others is kept as ``*_injob``; the figures measured alone (the
    measure_latency job: ``latency_bN``, ``latency_bN_ort``, their ``_dense`` twins, ``speedup_bN``,
    ``speedup_bN_ort``, ...) take the plain names that the tables use."""
    timed = [c.removesuffix("_alone") for c in alone.columns if c.endswith("_alone")]
    runs = runs.rename(columns={c: f"{c}_injob" for c in timed if c in runs.columns})
    alone = alone.rename(columns={f"{c}_alone": c for c in timed})
    return runs.merge(alone, on="path", how="left", validate="one_to_one")


def peak_memory(metrics: dict, benchmarks: dict[str, float], metrics_path: str) -> float | None:
    """Peak resident memory (MiB) of the run: measured by its process, else its job's (``benchmarks``: a batch's
    benchmark file -> max_rss)."""
    if metrics.get("peak_rss_mib") is not None:
        return metrics["peak_rss_mib"]
    return next((peak for path, peak in benchmarks.items() if metrics_path.startswith(path + "/")), None)


def with_previous(runs: pd.DataFrame, paths: list[str]) -> pd.DataFrame:
    """``runs`` plus the rows of each earlier runs.csv in ``paths`` that ``runs`` does not remake."""
    frames, made = [runs.assign(reused_from="")], set(run_keys(runs)) if len(runs) else set()
    for path in paths:
        old = pd.read_csv(path)
        missing = [c for c in ID_COLUMNS if c not in old.columns and c != "budget"]
        if missing:
            raise ValueError(f"previous_runs: {path} lacks the columns {', '.join(missing)} (is it a runs.csv?)")
        old = with_run_identity(old)  # made before budget ladders or ratio targets
        made_here = run_keys(old).isin(made)
        frames.append(old[~made_here].assign(reused_from=path))
        made |= set(run_keys(old))
    return pd.concat(frames, ignore_index=True)


def layers_beside(runs_csv: str) -> str:
    """Where an earlier design's per-layer table sits: layer_updates.csv beside its runs.csv."""
    return str(Path(runs_csv).with_name("layer_updates.csv"))


def with_previous_layers(layers: pd.DataFrame, runs: pd.DataFrame, tables: dict[str, str]) -> pd.DataFrame:
    """``layers`` (this design's per-layer rows) plus those of the runs joined from previous_runs: each joined run's
    rows from ``tables[its runs.csv]``, the layer_updates.csv beside it; a runs.csv without one adds none."""
    frames = [layers]
    for source, table in tables.items():
        joined = set(run_keys(runs[runs["reused_from"] == source]))
        if not joined:
            continue
        old = with_budget(pd.read_csv(table))
        frames.append(old[run_keys(old).isin(joined)])
    return pd.concat(frames, ignore_index=True)


def main(smk) -> None:
    log = start_log(smk.log[0])
    rows, layers = [], []
    benchmarks = {str(Path("results") / Path(f).relative_to("results/benchmarks").parent):
                  float(pd.read_csv(f, sep="\t")["max_rss"].iloc[-1]) for f in smk.input.benchmarks}
    for entry in smk.params.runs:
        path, run = entry["path"], {k: v for k, v in entry.items() if k != "path"}
        metrics = json.loads(Path(path).read_text())
        if metrics.get("method") != run["method"] or metrics.get("seed") != run["seed"]:
            raise ValueError(f"{path}: metrics say method={metrics.get('method')!r} seed={metrics.get('seed')!r}, "
                             f"the path says {run['method']!r} / {run['seed']}")
        metrics.pop("method"), metrics.pop("seed")
        target = PruningTarget.parse(run["target"])  # the path's label: '2.0' or 'r0.5'
        run = run | {"target": target.value, "budget": float(run["budget"])}
        rows.append(run | {"target_kind": target.kind, "path": path} | flatten(metrics)
                    | {"max_rss_mib": peak_memory(metrics, benchmarks, path)})
        changes = Path(path).with_name("weight_change.csv")
        if changes.is_file():
            table = pd.read_csv(changes)
            for key in reversed(ID_COLUMNS):
                table.insert(0, key, run[key])
            layers.append(table)
    latency = pd.concat([pd.read_csv(f) for f in smk.input.latency], ignore_index=True)
    runs = with_latency_alone(pd.DataFrame(rows), latency)
    runs = with_previous(runs, list(smk.input.previous))
    runs = runs.sort_values(ID_COLUMNS, kind="stable")
    kept = set(smk.input.previous_layers)
    beside = {path: layers_beside(path) for path in smk.input.previous if layers_beside(path) in kept}
    first = ID_COLUMNS + ["target_kind", "path", "settings_hash", "uses"]
    runs = runs[first + [c for c in runs.columns if c not in first]]
    runs.to_csv(smk.output.runs, index=False)
    columns = ID_COLUMNS + ["layer_index", "layer", "relative_change"]
    layer_table = pd.concat(layers, ignore_index=True) if layers else pd.DataFrame(columns=columns)
    layer_table = with_previous_layers(layer_table, runs, beside)
    layer_table.sort_values(ID_COLUMNS + ["layer_index"], kind="stable").to_csv(smk.output.layers, index=False)
    log.info("collected %d runs (%d reused from previous_runs; %d made here and %d joined with per-layer weight "
             "change)", len(runs), int((runs["reused_from"] != "").sum()), len(layers),
             layer_table[ID_COLUMNS].drop_duplicates().shape[0] - len(layers))
