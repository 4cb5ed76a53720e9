"""Issue-4 benchmark: PSP, its ablations and the controls on the public ResNet-56 and CIFAR-10 (JPEG copy).

Each job is one ``psp prune`` process (``run_jobs.run_job``), so the figures are what a user gets from the command
line. Prints a table and writes ``OUT/psp_resnet56.json`` and ``OUT/psp_resnet56.md``. Also measures how time and
peak memory grow with the number of calibration images (short PSP runs, same epochs for every size).

    python benchmarks/psp_resnet56.py --threads 2            # the full job (about 25 minutes on 2 cores)
    python benchmarks/psp_resnet56.py --threads 2 --psp-only --extra="--no-balanced" --out DIR   # tuned switches
"""

import argparse
import json
import shlex
import statistics
from pathlib import Path

from run_jobs import add_job_arguments, run_job

CONTROLS = ["dense_bn", "oneshot", "oneshot_bn"]
ABLATIONS = ["psp_no_penalty", "psp_no_balance", "psp_no_rec"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_job_arguments(p)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--scaling", type=int, nargs="*", default=[128, 512, 2048])
    p.add_argument("--scaling-epochs", type=int, nargs=2, default=[2, 1], metavar=("PENALTY", "REC"))
    p.add_argument("--extra", type=shlex.split, default=[],
                   help='extra psp prune flags for every job, one string: --extra="--no-balanced"')
    p.add_argument("--psp-only", action="store_true", help="only PSP over the seeds (e.g. with tuned --extra flags)")
    p.add_argument("--out", type=Path, default=Path("results/benchmarks/psp_resnet56"))
    args = p.parse_args()

    common = ["--model", "resnet56", "--checkpoint", args.checkpoint, "--data", args.data, "--normalize",
              "imagenet", "--target-macs", str(args.target), "--threads", str(args.threads), *args.extra]
    rows = []

    def job(method: str, seed: int, samples: int, *flags: str, tag: str = "") -> dict:
        name = f"{method}{tag}_n{samples}_s{seed}"
        m = run_job(["--method", method, "--samples", str(samples), "--seed", str(seed), *common, *flags],
                    args.out / name, args.out / f"{name}.log", reuse=args.reuse)
        row = {"job": name, "method": method + tag, "seed": seed, "samples": samples, "top1": m["top1"],
               "top1_dense": m["top1_dense"], "macs_reduction": m["macs_reduction"],
               "params_reduction": m["params_dense"] / m["params"], "seconds": m["seconds"],
               "seconds_total": m["seconds_total"], "peak_rss_mib": m["peak_rss_mib"]}
        rows.append(row)
        print(json.dumps(row), flush=True)
        (args.out / "psp_resnet56.json").write_text(json.dumps(rows, indent=2))
        return row

    for method in [] if args.psp_only else CONTROLS:
        job(method, args.seeds[0], args.samples)
    for seed in args.seeds:
        job("psp", seed, args.samples)
    for method in [] if args.psp_only else ABLATIONS:
        job(method, args.seeds[0], args.samples)
    pe, re = args.scaling_epochs
    for n in [] if args.psp_only else args.scaling:
        job("psp", args.seeds[0], n, "--penalty-epochs", str(pe), "--rec-epochs", str(re), tag=f"_{pe}+{re}ep")

    lines = ["| job | top-1 | MACs ↓ | params ↓ | seconds | peak RSS MiB |", "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['job']} | {100 * r['top1']:.2f} % | {r['macs_reduction']:.2f}× | {r['params_reduction']:.2f}× "
              f"| {r['seconds']:.1f} | {r['peak_rss_mib']:.0f} |" for r in rows]
    psp = [r["top1"] for r in rows if r["method"] == "psp"]
    if len(psp) > 1:
        lines.append(f"\nPSP over seeds {args.seeds}: mean {100 * statistics.mean(psp):.2f} %, "
                     f"std {100 * statistics.stdev(psp):.2f}, range {100 * (max(psp) - min(psp)):.2f} points")
    (args.out / "psp_resnet56.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
