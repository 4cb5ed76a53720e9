"""``psp`` (released settings), ``psp_fast`` and ``psp_plus`` side by side on the test split, one job at a time.

For each model (the public ResNet-20 and ResNet-56 on the JPEG CIFAR-10 copy) and seed, the three methods run one
after another in their own processes with the same threads, the same 512-image draw and nothing else meant to be
running, so that their ``seconds`` (the method's own time, from metrics.json) can be divided. Prints a table and
writes ``OUT/psp_recipes.json`` (one row per job) and ``OUT/psp_recipes.md``.

``--earlier CHECKOUT`` also runs ``psp`` from another checkout of the suite (e.g. ``git worktree add /tmp/before
<commit>``) in the same loop, as the row ``psp@before`` (first seed only): whether ``psp``'s own speed changed.
``--released-seconds MODEL=S`` gives the released PSP code's time on the same job, measured in the same session on
the same machine; the table then shows ``psp``'s time as a ratio of it. A time from another machine or day is context,
not a denominator, so nothing is printed without it.

    python benchmarks/psp_recipes.py --threads 2 --reuse
"""

import argparse
import json
import statistics
from pathlib import Path

from run_jobs import run_job

METHODS = ["psp", "psp_fast", "psp_plus"]


def _released(text: str) -> tuple[str, float]:
    model, _, seconds = text.partition("=")
    return model, float(seconds)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["resnet20", "resnet56"])
    p.add_argument("--methods", nargs="+", default=METHODS)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--target", type=float, default=2.1)
    p.add_argument("--samples", type=int, default=512)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--checkpoints", default="../shared/models/cifar10/{model}.th")
    p.add_argument("--data", default="imagefolder:../shared/data/cifar10-jpg")
    p.add_argument("--earlier", help="a checkout of the suite whose psp runs as the row psp@before")
    p.add_argument("--released-seconds", type=_released, action="append", default=[], metavar="MODEL=S")
    p.add_argument("--flags", default="", help="more psp prune flags for this checkout's jobs, not --earlier's "
                                               "(e.g. --flags='--memory-format contiguous')")
    p.add_argument("--reuse", action="store_true", help="read back jobs that already finished")
    p.add_argument("--out", type=Path, default=Path("results/benchmarks/psp_recipes"))
    args = p.parse_args()
    released = dict(args.released_seconds)
    if "psp" not in args.methods:
        p.error("--methods must include psp (every ratio is to its time)")
    methods = args.methods + (["psp@before"] if args.earlier else [])
    rows = []
    for model in args.models:
        for seed in args.seeds:
            for method in methods if seed == args.seeds[0] else args.methods:  # psp@before: the first seed only
                tag = f"{model}_{method}_s{seed}"
                m = run_job(["--method", method.removesuffix("@before"), "--model", model,
                             "--checkpoint", args.checkpoints.format(model=model), "--data", args.data,
                             "--normalize", "imagenet", "--target-macs", str(args.target),
                             "--samples", str(args.samples), "--seed", str(seed), "--threads", str(args.threads),
                             "--latency-repeats", "0", *([] if method.endswith("@before") else args.flags.split())],
                            args.out / "jobs" / tag, args.out / "jobs" / f"{tag}.log", reuse=args.reuse,
                            pythonpath=args.earlier if method.endswith("@before") else None)
                rows.append({"model": model, "method": method, "seed": seed, "top1": m["top1"],
                             "top1_dense": m["top1_dense"], "macs_reduction": m["macs_reduction"],
                             "seconds": m["seconds"], "peak_rss_mib": m["peak_rss_mib"]})
                print(json.dumps(rows[-1]), flush=True)
                (args.out / "psp_recipes.json").write_text(json.dumps(rows, indent=2))
    table = ["| model | method | top-1 (%) | Δ vs psp | seconds | × psp's seconds | × released code's |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: |"]
    for model in args.models:
        def of(method: str, key: str, model: str = model) -> list[float]:
            return [r[key] for r in rows if r["model"] == model and r["method"] == method]

        base_top1, base_seconds = statistics.mean(of("psp", "top1")), statistics.mean(of("psp", "seconds"))
        for method in methods:
            top1, seconds = of(method, "top1"), statistics.mean(of(method, "seconds"))
            if method == "psp@before":  # same seed, same draw: compared with psp's first-seed job
                base_top1, base_seconds = of("psp", "top1")[0], of("psp", "seconds")[0]
            spread = f" ± {100 * statistics.stdev(top1):.2f}" if len(top1) > 1 else ""
            vs_released = f"{seconds / released[model]:.2f}" if method == "psp" and model in released else ""
            table.append(f"| {model} | {method} | {100 * statistics.mean(top1):.2f}{spread} | "
                         f"{100 * (statistics.mean(top1) - base_top1):+.2f} | {seconds:.1f} | "
                         f"{seconds / base_seconds:.2f} | {vs_released} |")
    text = "\n".join(table)
    print(text)
    (args.out / "psp_recipes.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
