"""Choose PSP's switches on a validation split carved from the training set, never on the test set.

Runs each variant with ``--validation-size 5000 --eval-split validation`` (calibration draws never touch those
5,000 images), prints validation top-1 and writes ``OUT/tune_psp.json``. The winner is then run on the test split by
``psp_resnet56.py --extra ...``.

    python benchmarks/tune_psp.py --threads 2
"""

import argparse
import json
from pathlib import Path

from run_jobs import add_job_arguments, run_job

VARIANTS = {
    "released": [],
    "no_balance": ["--no-balanced"],
    "penalty_decay": ["--penalty", "decay"],
    "no_balance_decay": ["--no-balanced", "--penalty", "decay"],
    "penalty_add": ["--penalty", "add"],
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_job_arguments(p)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS)[:4], choices=list(VARIANTS))
    p.add_argument("--out", type=Path, default=Path("results/benchmarks/tune_psp"))
    args = p.parse_args()
    rows = []
    for name in args.variants:
        flags = ["--method", "psp", "--model", "resnet56", "--checkpoint", args.checkpoint, "--data", args.data,
                 "--normalize", "imagenet", "--target-macs", str(args.target), "--samples", str(args.samples),
                 "--seed", "0", "--threads", str(args.threads), "--validation-size", "5000",
                 "--eval-split", "validation", *VARIANTS[name]]
        m = run_job(flags, args.out / name, args.out / f"{name}.log", reuse=args.reuse)
        rows.append({"variant": name, "flags": " ".join(VARIANTS[name]), "val_top1": m["top1"],
                     "val_top1_dense": m["top1_dense"], "macs_reduction": m["macs_reduction"],
                     "seconds": m["seconds"]})
        print(json.dumps(rows[-1]), flush=True)
        (args.out / "tune_psp.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
