"""Channel rounding study: what ``--round-to`` costs in accuracy and gains in speed, in eager PyTorch and ONNX Runtime.

Two stages, so that the timing runs alone on the machine:

1. ``--stage prune``: PSP and ``oneshot_bn`` prune each model to the MACs target with ``--round-to`` 1, 4, 8 and 16
   (kept channel counts rounded to that multiple), ``--jobs`` at a time. A target that rounding cannot meet within
   ±2 % is recorded as unreachable.
2. ``--stage time``: every pruned model and its dense model are timed one after another in this process
   (``psp.latency.time_pair``: eager PyTorch in both memory formats and ONNX Runtime, at batch 1 and 64). Nothing else
   should be running. Each speed-up is shown with its fraction of the MACs reduction (1.0: as fast as the MACs say).

Writes ``OUT/round_to.csv`` (one row per job) and ``OUT/round_to.md`` and prints the table.

    python benchmarks/round_to.py --stage prune --jobs 2
    python benchmarks/round_to.py --stage time --threads 2
"""

import argparse
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import torch
from run_jobs import run_job

from psp.checkpoint import load_model
from psp.export import ArchitectureExports
from psp.latency import time_pair

METHODS = ["psp", "oneshot_bn"]
ROUND_TO = [1, 4, 8, 16]


def job_name(model: str, method: str, round_to: int, seed: int) -> str:
    return f"{model}_{method}_r{round_to}_s{seed}"


def prune_stage(args: argparse.Namespace) -> None:
    jobs = [(model, method, r) for model in args.models for method in args.methods for r in args.round_to]

    def run(job: tuple[str, str, int]) -> dict:
        model, method, r = job
        name = job_name(model, method, r, args.seed)
        flags = ["--method", method, "--model", model, "--checkpoint", args.checkpoints.format(model=model),
                 "--data", args.data, "--normalize", "imagenet", "--target-macs", str(args.target),
                 "--samples", str(args.samples), "--seed", str(args.seed), "--threads", str(args.threads),
                 "--round-to", str(r), "--latency-repeats", "0"]
        row = {"model": model, "method": method, "round_to": r, "seed": args.seed, "job": name}
        try:
            m = run_job(flags, args.out / "jobs" / name, args.out / "jobs" / f"{name}.log", reuse=args.reuse)
        except RuntimeError as e:
            last = (args.out / "jobs" / f"{name}.log").read_text().strip().splitlines()[-1:]
            print(f"{name}: {e}: {' '.join(last)}", flush=True)
            return row | {"error": " ".join(last)}
        row |= {"top1": m["top1"], "top1_dense": m["top1_dense"], "macs_reduction": m["macs_reduction"],
                "seconds": m["seconds"]}
        print(json.dumps(row), flush=True)
        return row

    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(run, jobs))
    pd.DataFrame(rows).to_csv(args.out / "pruned.csv", index=False)


def time_stage(args: argparse.Namespace) -> pd.DataFrame:
    """Every pruned model of the prune stage timed beside its dense model, one pair after another."""
    torch.set_num_threads(args.threads)
    pruned = pd.read_csv(args.out / "pruned.csv")
    exports, denses, rows = ArchitectureExports(), {}, []
    for job in pruned.to_dict("records"):
        if isinstance(job.get("error"), str):
            rows.append(job)
            continue
        model = load_model(args.out / "jobs" / job["job"] / "model.pt")
        spec = model.data
        example = torch.zeros(1, spec.in_channels, spec.image_size, spec.image_size)
        if job["model"] not in denses:
            checkpoint = args.checkpoints.format(model=job["model"])
            denses[job["model"]] = load_model(checkpoint, job["model"], spec, "imagenet").model.eval()
        timed = time_pair(denses[job["model"]], model.model.eval(), example, exports, args.repeats)
        rows.append(job | timed | {"threads": args.threads})
        print(f"{job['job']}: speed-up b1 {timed['speedup_b1']:.2f}x (ORT {timed['speedup_b1_ort']:.2f}x), b64 "
              f"{timed['speedup_b64']:.2f}x (ORT {timed['speedup_b64_ort']:.2f}x)", flush=True)
    table = pd.DataFrame(rows)
    table.to_csv(args.out / "round_to.csv", index=False)
    return table


def markdown(table: pd.DataFrame) -> str:
    """One row per job: accuracy against ``--round-to 1``, MACs reduction, and each runtime's speed-up with its
    fraction of the MACs reduction (1.0 = as fast as the MACs say)."""
    lines = ["| model | method | round-to | top-1 % | Δ vs round-to 1 | MACs ↓ × | PyTorch b1 × | PyTorch b64 × | "
             "ORT b1 × | ORT b64 × | PyTorch formats b1/b64 |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for job in table.to_dict("records"):
        if isinstance(job.get("error"), str):
            lines.append(f"| {job['model']} | {job['method']} | {job['round_to']} | {job['error']} ||||||||")
            continue
        base = table[(table["model"] == job["model"]) & (table["method"] == job["method"]) & (table["round_to"] == 1)]
        delta = 100 * (job["top1"] - base["top1"].iloc[0]) if len(base) else float("nan")
        cells = [f"{job[c]:.2f} ({job[c] / job['macs_reduction']:.2f})" for c in
                 ("speedup_b1", "speedup_b64", "speedup_b1_ort", "speedup_b64_ort")]
        lines.append(f"| {job['model']} | {job['method']} | {job['round_to']} | {100 * job['top1']:.2f} | {delta:+.2f} "
                     f"| {job['macs_reduction']:.2f} | {' | '.join(cells)} | {job['torch_format_b1']} / "
                     f"{job['torch_format_b64']} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stage", choices=["prune", "time"], required=True)
    p.add_argument("--models", nargs="+", default=["resnet20", "resnet56"])
    p.add_argument("--methods", nargs="+", default=METHODS)
    p.add_argument("--round-to", type=int, nargs="+", default=ROUND_TO)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--target", type=float, default=2.1)
    p.add_argument("--samples", type=int, default=512)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--jobs", type=int, default=1, help="prune jobs at a time (stage prune)")
    p.add_argument("--checkpoints", default="../shared/models/cifar10/{model}.th")
    p.add_argument("--data", default="imagefolder:../shared/data/cifar10-jpg")
    p.add_argument("--repeats", type=int, default=40, help="timed passes per figure at batch 1 (a quarter at 64)")
    p.add_argument("--reuse", action="store_true", help="read back jobs that already finished")
    p.add_argument("--out", type=Path, default=Path("results/benchmarks/round_to"))
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.stage == "prune":
        prune_stage(args)
        return
    text = markdown(time_stage(args))
    print(text)
    (args.out / "round_to.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
