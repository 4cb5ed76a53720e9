"""Channel rounding study: what ``--round-to`` costs in accuracy and gains in speed, in eager PyTorch and ONNX Runtime.

Two stages, so that the timing runs alone on the machine:

1. ``--stage prune``: PSP and ``oneshot_bn`` prune each model to the MACs target with ``--round-to`` 1, 4, 8 and 16
   (kept channel counts rounded to that multiple), ``--jobs`` at a time. A target that rounding cannot meet within
   ±2 % is recorded as unreachable.
2. ``--stage time``: every pruned model and its dense model are timed one after another in this process
   (``psp.latency.time_pair``: eager PyTorch in both memory formats and ONNX Runtime, at batch 1 and 64), ``--trials``
   times over (medians). Nothing else should be running. Each speed-up is shown with its fraction of the MACs
   reduction (1.0: as fast as the MACs say).
3. ``--stage breakdown``: where ONNX Runtime's time goes (its profiler, per operator type) for the dense model and
   some pruned ones: convolutions against everything else.

Writes ``OUT/round_to.csv`` (one row per job), ``OUT/timings.csv`` (one row per job and trial), ``OUT/round_to.md``
and ``OUT/breakdown.md``, and prints the tables.

    python benchmarks/round_to.py --stage prune --jobs 2
    python benchmarks/round_to.py --stage time --threads 2
    python benchmarks/round_to.py --stage breakdown --threads 2
"""

import argparse
import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import torch
from run_jobs import run_job

from psp.checkpoint import load_model
from psp.data.spec import example_input
from psp.export import ArchitectureExports, export_onnx, ort_session
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


SPEEDUPS = ["speedup_b1", "speedup_b64", "speedup_b1_ort", "speedup_b64_ort"]


def time_stage(args: argparse.Namespace) -> pd.DataFrame:
    """Every pruned model of the prune stage timed beside its dense model, one pair after another, ``--trials``
    times over; each job's figures are the medians over the trials (every trial's row is in ``timings.csv``)."""
    torch.set_num_threads(args.threads)
    pruned = pd.read_csv(args.out / "pruned.csv")
    exports, denses, models, trials = ArchitectureExports(), {}, {}, []
    for trial in range(args.trials):
        for job in pruned.to_dict("records"):
            if isinstance(job.get("error"), str):
                continue
            if job["job"] not in models:
                models[job["job"]] = load_model(args.out / "jobs" / job["job"] / "model.pt")
            model = models[job["job"]]
            spec = model.data
            example = example_input(spec)
            if job["model"] not in denses:
                checkpoint = args.checkpoints.format(model=job["model"])
                denses[job["model"]] = load_model(checkpoint, job["model"], spec, "imagenet").model.eval()
            timed = time_pair(denses[job["model"]], model.model.eval(), example, exports, args.repeats)
            trials.append({"job": job["job"], "trial": trial} | timed)
            print(f"trial {trial} {job['job']}: speed-up b1 {timed['speedup_b1']:.2f}x (ORT "
                  f"{timed['speedup_b1_ort']:.2f}x), b64 {timed['speedup_b64']:.2f}x (ORT "
                  f"{timed['speedup_b64_ort']:.2f}x)", flush=True)
    timings = pd.DataFrame(trials)
    timings.to_csv(args.out / "timings.csv", index=False)
    numbers = timings.drop(columns="trial").groupby("job").median(numeric_only=True)
    spread = timings.groupby("job")[SPEEDUPS].agg(lambda v: v.max() - v.min()).add_suffix("_spread")
    formats = timings.groupby("job")[["torch_format_b1", "torch_format_b64"]].agg(lambda v: "/".join(sorted(set(v))))
    table = pruned.merge(numbers.join(spread).join(formats), left_on="job", right_index=True, how="left")
    table["threads"], table["trials"] = args.threads, args.trials
    table.to_csv(args.out / "round_to.csv", index=False)
    return table


def ort_breakdown(onnx_bytes: bytes, example: torch.Tensor, batch: int, threads: int, runs: int) -> dict[str, float]:
    """ONNX Runtime's milliseconds per run in each operator type (its own profiler), and the wall time per run."""
    with tempfile.TemporaryDirectory() as folder:
        session = ort_session(onnx_bytes, threads, profile_prefix=str(Path(folder) / "ort"))
        x = example[:1].expand(batch, *example.shape[1:]).contiguous().numpy()
        for _ in range(5):
            session.run(None, {"input": x})
        start = time.perf_counter()
        for _ in range(runs):
            session.run(None, {"input": x})
        wall = (time.perf_counter() - start) / runs
        events = json.loads(Path(session.end_profiling()).read_text())
    by_op: dict[str, float] = {}
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            op = event["args"]["op_name"]
            by_op[op] = by_op.get(op, 0.0) + event["dur"] / 1000
    timed_runs = runs + 5
    return {op: ms / timed_runs for op, ms in by_op.items()} | {"wall": 1000 * wall}


def breakdown_stage(args: argparse.Namespace) -> str:
    """Where ONNX Runtime's time goes for the dense model and each ``--breakdown`` job: milliseconds per run in
    convolutions and in everything else, at batch 1 and 64, against the MACs reduction."""
    torch.set_num_threads(args.threads)
    lines = ["| model | batch | wall ms | Conv ms | other ops ms | not in an op ms | Conv speed-up × | MACs ↓ × |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    pruned = pd.read_csv(args.out / "pruned.csv").set_index("job")
    dense_spec = load_model(args.out / "jobs" / args.breakdown[0] / "model.pt").data
    example = example_input(dense_spec)
    model_name = pruned.loc[args.breakdown[0], "model"]
    dense = load_model(args.checkpoints.format(model=model_name), model_name, dense_spec, "imagenet").model.eval()
    models = {f"{model_name} dense": (dense, 1.0)} | {
        job: (load_model(args.out / "jobs" / job / "model.pt").model.eval(), pruned.loc[job, "macs_reduction"])
        for job in args.breakdown}
    for batch in (1, 64):
        base_conv = None
        for name, (model, reduction) in models.items():
            ms = ort_breakdown(export_onnx(model, example), example, batch, args.threads, 60 if batch == 1 else 15)
            conv, wall = ms.get("Conv", 0.0) + ms.get("FusedConv", 0.0), ms["wall"]
            other = sum(v for k, v in ms.items() if k not in ("Conv", "FusedConv", "wall"))
            base_conv = base_conv or conv
            lines.append(f"| {name} | {batch} | {wall:.2f} | {conv:.2f} | {other:.2f} | {wall - conv - other:.2f} "
                         f"| {base_conv / conv:.2f} | {reduction:.2f} |")
    return "\n".join(lines)


def markdown(table: pd.DataFrame) -> str:
    """One row per job: accuracy against ``--round-to 1``, MACs reduction, and each runtime's speed-up (median over
    trials) with its fraction of the MACs reduction (1.0 = as fast as the MACs say) and ± half its range."""
    lines = ["| model | method | round-to | top-1 % | Δ vs round-to 1 | MACs ↓ × | PyTorch b1 × | PyTorch b64 × | "
             "ORT b1 × | ORT b64 × | PyTorch formats b1/b64 |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for job in table.to_dict("records"):
        if isinstance(job.get("error"), str):
            lines.append(f"| {job['model']} | {job['method']} | {job['round_to']} | {job['error']} ||||||||")
            continue
        base = table[(table["model"] == job["model"]) & (table["method"] == job["method"]) & (table["round_to"] == 1)]
        delta = 100 * (job["top1"] - base["top1"].iloc[0]) if len(base) else float("nan")
        cells = [f"{job[c]:.2f} ({job[c] / job['macs_reduction']:.2f}) ±{job[f'{c}_spread'] / 2:.2f}"
                 for c in SPEEDUPS]
        lines.append(f"| {job['model']} | {job['method']} | {job['round_to']} | {100 * job['top1']:.2f} | {delta:+.2f} "
                     f"| {job['macs_reduction']:.2f} | {' | '.join(cells)} | {job['torch_format_b1']} · "
                     f"{job['torch_format_b64']} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stage", choices=["prune", "time", "breakdown"], required=True)
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
    p.add_argument("--repeats", type=int, default=60, help="timed passes per figure at batch 1 (a quarter at 64)")
    p.add_argument("--trials", type=int, default=3, help="passes over all jobs (stage time); medians are reported")
    p.add_argument("--breakdown", nargs="+", default=["resnet56_psp_r1_s0", "resnet56_psp_r4_s0", "resnet56_psp_r8_s0"],
                   help="jobs (of one model) whose ONNX Runtime time is split by operator (stage breakdown)")
    p.add_argument("--reuse", action="store_true", help="read back jobs that already finished")
    p.add_argument("--out", type=Path, default=Path("results/benchmarks/round_to"))
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.stage == "prune":
        prune_stage(args)
        return
    text = markdown(time_stage(args)) if args.stage == "time" else breakdown_stage(args)
    print(text)
    (args.out / f"{'round_to' if args.stage == 'time' else 'breakdown'}.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
