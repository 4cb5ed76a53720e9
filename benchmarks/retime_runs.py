"""Time the models of an existing runs.csv again, in eager PyTorch and ONNX Runtime, without their model files.

A committed reference keeps its runs.csv but not its ``model.pt`` files (hundreds of them). Latency depends on the
layer shapes, not on the weights, and every run records its removed channel counts per group
(``channels_removed``), so each run's pruned architecture is rebuilt from its dense checkpoint: the first N
channels of each recorded group are removed, giving the same layer widths (and so the same MACs, checked) as the
run's own model. Each distinct architecture is timed once beside its dense model (``psp.latency.time_pair``: eager
PyTorch in the faster memory format, then ONNX Runtime, at batch 1 and 64), alone on the machine.

Writes the runs with their latency columns replaced (``latency_bN``, ``latency_bN_ort``, their ``_dense``
twins, ``speedup_bN``, ``speedup_bN_ort``, ``torch_format_bN``, ``latency_threads``; ``retimed`` names this
script), then the comparison table and the speed-up figure regenerated from them by the workflow's own scripts.

    python benchmarks/retime_runs.py --threads 2 \\
        --runs results/reference/cifar10_jpg/runs.csv results/reference/cifar10_jpg_recipes/runs.csv \\
        --out results/reference/cifar10_jpg results/reference/cifar10_jpg_recipes
"""

import argparse
import copy
import json
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))
import plot_speedup  # noqa: E402
import tabulate_comparison  # noqa: E402

from psp.checkpoint import load_model  # noqa: E402
from psp.data.datasets import load_data  # noqa: E402
from psp.data.spec import example_input  # noqa: E402
from psp.export import ArchitectureExports  # noqa: E402
from psp.latency import time_pair  # noqa: E402
from psp.metrics import count_macs  # noqa: E402
from psp.structure.groups import channel_groups  # noqa: E402
from psp.structure.removal import remove_channels  # noqa: E402

ARCHITECTURE = ["settings.checkpoint", "arch", "data_spec", "settings.normalize", "channels_removed"]


def rebuilt(dense: torch.nn.Module, example: torch.Tensor, removed: dict[str, int]) -> torch.nn.Module:
    """``dense`` with the first ``removed[root]`` channels of each group removed (the run's widths)."""
    roots = {g.root for g in channel_groups(dense, example)}
    unknown = sorted(set(removed) - roots)
    if unknown:
        raise ValueError(f"channels_removed names groups the model does not have: {', '.join(unknown)}")
    selection = {root: list(range(n)) for root, n in removed.items() if n}
    return remove_channels(copy.deepcopy(dense), selection, example).eval()


def retime(runs: pd.DataFrame, repeats: int) -> pd.DataFrame:
    """One row per distinct architecture of ``runs``: the pair's timings, keyed by the ARCHITECTURE columns."""
    exports, rows, bundles, denses = ArchitectureExports(), [], {}, {}
    distinct = runs.groupby(ARCHITECTURE, sort=False)
    for i, (key, group) in enumerate(distinct, 1):
        checkpoint, arch, data, normalize, removed = key
        if data not in bundles:
            bundles[data] = load_data(data).spec
        spec = bundles[data]
        example = example_input(spec)
        if checkpoint not in denses:
            denses[checkpoint] = load_model(checkpoint, arch, spec, normalize).model.eval()
        dense = denses[checkpoint]
        pruned = rebuilt(dense, example, json.loads(removed))
        if not (group["macs"] == count_macs(pruned, example)).all():
            raise ValueError(f"{arch} {removed}: the rebuilt model has {count_macs(pruned, example)} MACs, the runs "
                             f"{sorted(group['macs'].unique())}")
        start = time.perf_counter()
        timed = time_pair(dense, pruned, example, exports, repeats)
        rows.append(dict(zip(ARCHITECTURE, key, strict=True)) | timed)
        print(f"[{i}/{distinct.ngroups}] {arch} speed-up b1 {timed['speedup_b1']:.2f}x (ORT "
              f"{timed['speedup_b1_ort']:.2f}x), b64 {timed['speedup_b64']:.2f}x (ORT {timed['speedup_b64_ort']:.2f}x)"
              f" in {time.perf_counter() - start:.1f} s", flush=True)
    return pd.DataFrame(rows)


def regenerate(runs_csv: Path, out: Path, default_samples: int, logs: Path) -> None:
    """The comparison table and the speed-up figure, by the workflow's scripts, from ``runs_csv``."""
    design = {"default_samples": default_samples}
    table = SimpleNamespace(input=SimpleNamespace(runs=str(runs_csv)), params=SimpleNamespace(design=design),
                            output=SimpleNamespace(**{k: str(out / f"comparison.{k}") for k in ("csv", "md", "tex")}),
                            log=[str(logs / "comparison.log")])
    figure = SimpleNamespace(input=SimpleNamespace(runs=str(runs_csv)), params=SimpleNamespace(design=design),
                             output=SimpleNamespace(**{k: str(out / f"speedup_vs_macs.{k}") for k in ("png", "pdf")}),
                             log=[str(logs / "speedup_vs_macs.log")])
    for smk, script in ((table, tabulate_comparison), (figure, plot_speedup)):
        stderr = sys.stderr
        try:
            script.main(smk)
        finally:
            sys.stderr = stderr


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=Path, nargs="+", required=True, help="runs.csv files written by collect_runs")
    p.add_argument("--out", type=Path, nargs="+", required=True,
                   help="one folder per --runs file for its runs.csv, comparison.* and speed-up figure")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=60, help="timed passes per figure at batch 1 (a quarter at 64)")
    p.add_argument("--default-samples", type=int, default=512, help="the designs' default calibration size")
    args = p.parse_args()
    if len(args.runs) != len(args.out):
        p.error(f"{len(args.runs)} --runs files but {len(args.out)} --out folders: give one folder per file")
    torch.set_num_threads(args.threads)
    tables = [pd.read_csv(path) for path in args.runs]
    for path, runs in zip(args.runs, tables, strict=True):
        missing = [c for c in [*ARCHITECTURE, "macs"] if c not in runs.columns]
        if missing:
            p.error(f"{path} lacks the columns {', '.join(missing)} (is it a runs.csv?)")
    timed = retime(pd.concat(tables, ignore_index=True), args.repeats)  # each architecture once, for every file
    replaced = [c for c in timed.columns if c not in ARCHITECTURE]
    for runs, out in zip(tables, args.out, strict=True):
        runs = runs.drop(columns=[c for c in replaced if c in runs.columns]).merge(timed, on=ARCHITECTURE, how="left")
        runs["latency_threads"] = args.threads
        runs["retimed"] = f"benchmarks/retime_runs.py ({time.strftime('%Y-%m-%d')})"
        out.mkdir(parents=True, exist_ok=True)
        runs.to_csv(out / "runs.csv", index=False)
        with tempfile.TemporaryDirectory() as logs:
            regenerate(out / "runs.csv", out, args.default_samples, Path(logs))
        print(f"{out}: {len(runs)} runs with both runtimes' latency, comparison table and speed-up figure")


if __name__ == "__main__":
    main()
