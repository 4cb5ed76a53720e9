"""Issue-5 benchmark: every method on the public ResNet-56 and CIFAR-10 (JPEG copy) at the same MACs reduction.

Post-training methods use the same 512 calibration images (seed 0); the retraining methods (L1, GReg, DepGraph) get
a stated CPU budget (default: one epoch over 10,000 training images for fine-tuning, one for regularisation). Each
job is one ``psp prune`` process. Prints a table and writes ``OUT/baselines_resnet56.json`` and ``.md``.

    python benchmarks/baselines_resnet56.py --threads 2
"""

import argparse
import json
from pathlib import Path

from run_jobs import add_job_arguments, run_job

METHODS = ["dense_bn", "oneshot", "oneshot_bn", "neuron_merging", "adaprune", "gap", "psp", "l1", "greg", "depgraph"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_job_arguments(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--methods", nargs="+", default=METHODS)
    p.add_argument("--budget", nargs="*", default=["--epochs", "1", "--train-subset", "10000", "--reg-epochs", "1"],
                   help="flags of the retraining budget")
    p.add_argument("--out", type=Path, default=Path("results/benchmarks/baselines_resnet56"))
    args = p.parse_args()

    rows = []
    for method in args.methods:
        flags = ["--method", method, "--model", "resnet56", "--checkpoint", args.checkpoint, "--data", args.data,
                 "--normalize", "imagenet", "--target-macs", str(args.target), "--samples", str(args.samples),
                 "--seed", str(args.seed), "--threads", str(args.threads), *args.budget]
        m = run_job(flags, args.out / method, args.out / f"{method}.log", reuse=args.reuse)
        row = {"method": method, "uses": m["uses"], "top1": m["top1"], "top1_dense": m["top1_dense"],
               "macs_reduction": m["macs_reduction"], "params_reduction": m["params_dense"] / m["params"],
               "seconds": m["seconds"], "images_seen": m["images_seen"], "epochs": m["epochs"],
               "speedup_b1": m["speedup_b1"], "speedup_b64": m["speedup_b64"], "peak_rss_mib": m["peak_rss_mib"]}
        rows.append(row)
        print(json.dumps(row), flush=True)
        (args.out / "baselines_resnet56.json").write_text(json.dumps(rows, indent=2))
    lines = ["| method | uses | top-1 | MACs ↓ | params ↓ | seconds | images seen | epochs |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['method']} | {r['uses']} | {100 * r['top1']:.2f} % | {r['macs_reduction']:.2f}× | "
              f"{r['params_reduction']:.2f}× | {r['seconds']:.1f} | {r['images_seen']} | {r['epochs']:.2f} |"
              for r in rows]
    (args.out / "baselines_resnet56.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
