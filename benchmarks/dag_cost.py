"""Where a workflow run's time goes: job-seconds by rule from Snakemake's benchmark files, and the fixed cost of one
pruning process (a no-op-sized run), so that the next regression of the main job shows.

The fixed cost is timed on a resnet8_tiny checkpoint (7.5k parameters, trained 0 epochs) pruned by ``oneshot``
(0.03 s of pruning): the process's wall time, of which ``seconds_total`` is spent inside ``prune_runs`` (loading the
data and checkpoint, the support probe, the dense reference, evaluating and saving) and the rest starting Python and
importing torch and torch-pruning. One run alone, then the same process with more runs (``--run``), shows what each
further run of a batch costs.

    python benchmarks/dag_cost.py                          # after `make run`: reads results/benchmarks/
    python benchmarks/dag_cost.py --repeats 5 --out results/benchmarks/dag_cost.json
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path


def rule_of(tsv: Path) -> str:
    """The rule a benchmark file belongs to, from the names the workflow's rules give them."""
    if tsv.name == "prune.tsv":
        return "prune_model"
    if tsv.name.startswith("latency-"):
        return "measure_latency"
    if tsv.name == "train.tsv":
        return "train_base_model"
    return f"{tsv.parent.name}/{tsv.stem}"  # tables/<name>, figures/<name>


def job_seconds(root: Path) -> dict[str, dict]:
    """Per rule: jobs, job-seconds (wall time of each job, summed) and the longest job."""
    by_rule: dict[str, list[float]] = defaultdict(list)
    for tsv in sorted(root.rglob("*.tsv")):
        lines = tsv.read_text().splitlines()
        if len(lines) < 2 or not lines[0].startswith("s\t"):
            continue  # not a Snakemake benchmark file
        by_rule[rule_of(tsv)].append(float(lines[-1].split("\t")[0]))
    return {rule: {"jobs": len(s), "job_seconds": sum(s), "longest": max(s)}
            for rule, s in sorted(by_rule.items(), key=lambda kv: -sum(kv[1]))}


def _psp(*args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "psp", *args], check=True, capture_output=True, text=True)
    return time.perf_counter() - start


def fixed_cost(repeats: int, runs: int) -> dict:
    """Wall time of a no-op-sized `psp prune` process with one run and with ``runs`` runs, over ``repeats``."""
    with tempfile.TemporaryDirectory(prefix="dag_cost_") as tmp:
        base = Path(tmp) / "base"
        _psp("train", "--model", "resnet8_tiny", "--data", "mnist5k", "--epochs", "0", "--latency-repeats", "0",
             "--threads", "1", "--out", str(base))
        common = ["prune", "--method", "oneshot", "--checkpoint", str(base / "model.pt"), "--threads", "1",
                  "--latency-repeats", "0", "--dense-metrics", str(base / "metrics.json")]
        alone, inside, batch = [], [], []
        for i in range(repeats):
            out = Path(tmp) / f"alone{i}"
            alone.append(_psp(*common, "--target-macs", "2", "--samples", "32", "--out", str(out)))
            inside.append(json.loads((out / "metrics.json").read_text())["seconds_total"])
            flags = [a for s in range(runs) for a in ("--run", f"target=2.0,samples=32,seed={s},out={tmp}/b{i}_{s}")]
            batch.append(_psp(*common, *flags))
    alone_s, batch_s = statistics.median(alone), statistics.median(batch)
    return {"repeats": repeats, "process_seconds": alone_s, "process_seconds_min": min(alone),
            "in_process_seconds": statistics.median(inside), "start_and_imports_seconds": alone_s
            - statistics.median(inside), "batch_runs": runs, "batch_seconds": batch_s,
            "each_further_run_seconds": (batch_s - alone_s) / (runs - 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--benchmarks", type=Path, default=Path("results/benchmarks"),
                   help="Snakemake's benchmark files of a workflow run (default: results/benchmarks)")
    p.add_argument("--repeats", type=int, default=3, help="timings of the no-op-sized process (median shown)")
    p.add_argument("--runs", type=int, default=6, help="runs in the batched process")
    p.add_argument("--out", type=Path, default=Path("results/benchmarks/dag_cost.json"))
    args = p.parse_args()
    rules = job_seconds(args.benchmarks) if args.benchmarks.is_dir() else {}
    if rules:
        total = sum(r["job_seconds"] for r in rules.values())
        print(f"job-seconds by rule ({args.benchmarks}; {total:.0f} in all):")
        for rule, r in rules.items():
            print(f"  {rule:28s} {r['jobs']:4d} jobs {r['job_seconds']:8.1f} s  (longest {r['longest']:.1f} s)")
    else:
        print(f"no Snakemake benchmark files under {args.benchmarks} (run the workflow first)")
    cost = fixed_cost(args.repeats, args.runs)
    print(f"one no-op-sized pruning process: {cost['process_seconds']:.2f} s (min {cost['process_seconds_min']:.2f}),"
          f" of which {cost['start_and_imports_seconds']:.2f} s starting Python and importing, "
          f"{cost['in_process_seconds']:.2f} s in prune_runs; each further run of a batch "
          f"{cost['each_further_run_seconds']:.2f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rules": rules, "fixed_cost": cost}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
