"""Where a short workflow job's time goes: one ``psp prune`` of a fast method (``oneshot_bn``: selection, removal,
BatchNorm re-estimation) on the public ResNet-56, taken apart step by step with the library's own calls, plus the
whole command's wall time with and without in-job latency timing (``--latency-repeats 0``, what the workflow now
passes). Prints a table and writes ``OUT/job_overhead.json`` and ``OUT/job_overhead.md``.

    python benchmarks/job_overhead.py --threads 1          # one thread, as a workflow job runs
"""

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from run_jobs import add_job_arguments, run_job


def _seconds(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def steps(args: argparse.Namespace, dense_metrics: Path) -> dict[str, float]:
    """The steps of ``psp.pipeline.prune_run`` for oneshot_bn, each timed alone (imports timed in a fresh process)."""
    code = "import psp.pipeline, psp.methods, baselines"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    timings = {"interpreter and imports (torch, torch-pruning -> timm -> torchvision -> torch._dynamo)":
               time.perf_counter() - start}
    from psp import pipeline
    from psp.methods import PruneContext, get_method
    from psp.runtime import configure
    from psp.settings import PruneSettings

    opts = pipeline.RunOptions(threads=args.threads, device="cpu")
    device = configure(args.threads, 0, "cpu")
    timings["load data index and checkpoint"], (loaded, bundle, _) = _seconds(
        lambda: pipeline.load_for_run(args.checkpoint, "resnet56", args.data, "imagenet", opts))
    model = loaded.model.eval()
    settings = PruneSettings(target_macs=args.target, samples=args.samples, seed=0)
    no_timing = pipeline.RunOptions(threads=args.threads, device="cpu", latency_repeats=0)
    timings["dense reference from --dense-metrics (MACs check)"], _ = _seconds(
        lambda: pipeline.dense_reference(model, bundle, "imagenet", device, no_timing, None, dense_metrics))
    indices = pipeline.calibration_indices(settings, bundle)
    timings["decode calibration images (building the method's context)"], ctx = _seconds(
        lambda: PruneContext.build(model, bundle, settings, normalize="imagenet", indices=indices, device=device))
    timings["method (oneshot_bn)"], result = _seconds(lambda: get_method("oneshot_bn").run(ctx))
    timings["evaluate pruned model on the test split"], _ = _seconds(
        lambda: pipeline.evaluate(result.model, bundle, "imagenet", device, no_timing))
    timed = pipeline.RunOptions(threads=args.threads, device="cpu")
    timings["in-job latency, dense and pruned (now skipped in the workflow)"], _ = _seconds(
        lambda: (pipeline.size_and_latency(model, bundle, device, timed),
                 pipeline.size_and_latency(result.model, bundle, device, timed)))
    return timings


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_job_arguments(p)
    p.add_argument("--out", type=Path, default=Path("results/benchmarks/job_overhead"))
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    dense = args.out / "dense_metrics.json"
    if not dense.is_file():
        subprocess.run([sys.executable, "-m", "psp.cli", "eval", "--model", "resnet56", "--checkpoint",
                        args.checkpoint, "--data", args.data, "--normalize", "imagenet", "--threads",
                        str(args.threads), "--out", str(dense)], check=True)
    common = ["--method", "oneshot_bn", "--model", "resnet56", "--checkpoint", args.checkpoint, "--data", args.data,
              "--normalize", "imagenet", "--target-macs", str(args.target), "--samples", str(args.samples),
              "--seed", "0", "--threads", str(args.threads), "--dense-metrics", str(dense)]
    whole = {}
    for label, extra in (("timed in job", []), ("--latency-repeats 0", ["--latency-repeats", "0"])):
        job = run_job(common + extra, args.out / label.replace(" ", "_"), args.out / f"{label.replace(' ', '_')}.log")
        whole[label] = job["wall_s"]
    parts = steps(args, dense)
    lines = ["| step | seconds |", "| --- | ---: |"]
    lines += [f"| {name} | {seconds:.2f} |" for name, seconds in parts.items()]
    lines += [f"| whole command, {label} | {seconds:.2f} |" for label, seconds in whole.items()]
    text = (f"# One short pruning job, step by step\n\nResNet-56, {args.data}, target {args.target}×, "
            f"{args.samples} images, {args.threads} thread(s); steps timed one after another in one process, the "
            "whole commands in their own processes, all in one run.\n\n" + "\n".join(lines) + "\n")
    print(text)
    (args.out / "job_overhead.md").write_text(text)
    (args.out / "job_overhead.json").write_text(json.dumps({"steps": parts, "whole_command": whole,
                                                            "threads": args.threads}, indent=2))


if __name__ == "__main__":
    main()
