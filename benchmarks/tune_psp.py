"""Search PSP's switches and schedule on a validation split carved from the training set, never on the test set.

Every job is ``psp prune --method psp`` plus one configuration's flags, with ``--validation-size 5000
--eval-split validation``: the 5,000 held-out training images are never drawn for calibration, and the test split is
never read. The search is staged, because 2 CPU cores cannot afford the full product of models, targets and
configurations:

1. ``--stage screen``: configurations on ResNet-20 at 2.1x;
2. ``--stage confirm``: the released setting and the best configurations of each kind on ResNet-56 (and ResNet-20)
   at 2.1x and 3.0x; the recipe is the configuration with the best mean over the four cells.

Configurations are either ``plus`` candidates (at most 2x the released 30 epochs: most accurate) or ``fast``
candidates (about a quarter of the released compute: a phase-1 epoch trains the full-width model, a phase-2 epoch the
pruned one). Jobs run ``--jobs`` at a time with one thread each; the validation accuracy, not the time, is what is
compared (``psp_fast``'s time is measured alone by ``psp_recipes.py``). Writes ``OUT/tune_psp.csv`` (one row per
job, re-read with ``--reuse``) and prints the mean per configuration.

    python benchmarks/tune_psp.py --stage screen --jobs 2 --reuse
    python benchmarks/tune_psp.py --stage confirm --configs released nb ... --jobs 2 --reuse
"""

import argparse
import csv
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from run_jobs import run_job

NB = ["--balance-power", "0"]
COS = ["--lr-schedule", "cosine"]
P2COS = ["--lr-schedule", "phase2_cosine"]
LR3 = ["--lr", "3e-3"]
B64 = ["--batch-size", "64"]


def _epochs(penalty: int, rec: int) -> list[str]:
    return ["--penalty-epochs", str(penalty), "--rec-epochs", str(rec)]


# name -> (kind, flags); "released" is PSP as released (20 + 10 epochs, balanced rates, constant lr 1e-3). Only
# configurations that ran are listed (the search's log: results/reference/psp_plus/). The penalty's strength (--reg,
# --reg-growth) is not searched: the released "replace" penalty is normalised away by Adam.
CONFIGS: dict[str, tuple[str, list[str]]] = {
    "released": ("plus", []),
    "nb": ("plus", NB),
    "a0.5": ("plus", ["--balance-power", "0.5"]),
    "nb_cos": ("plus", NB + COS),
    "nb_cos_lr3e-3": ("plus", NB + COS + LR3),
    "nb_bnrecal": ("plus", NB + ["--bn-recalibrate"]),
    "nb_bneval": ("plus", NB + ["--bn-mode", "eval"]),
    "nb_b64": ("plus", NB + B64),
    "nb_lr3e-3": ("plus", NB + LR3),
    "nb_p2cos": ("plus", NB + P2COS),
    "nb_lr3e-3_p2cos": ("plus", NB + LR3 + P2COS),
    "nb_lr1e-2_p2cos": ("plus", NB + ["--lr", "1e-2"] + P2COS),
    "nb_lr3e-3_p2cos_decay": ("plus", NB + LR3 + P2COS + ["--penalty", "decay"]),
    "nb_lr3e-3_p2cos_noreselect": ("plus", NB + LR3 + P2COS + ["--no-reselect"]),
    "nb_lr3e-3_p2cos_20+40": ("plus", NB + LR3 + P2COS + _epochs(20, 40)),
    "nb_lr3e-3_p2cos_30+30": ("plus", NB + LR3 + P2COS + _epochs(30, 30)),
    "nb_lr3e-3_p2cos_b64_20+40": ("plus", NB + LR3 + P2COS + B64 + _epochs(20, 40)),
    "nb_lr3e-3_p2cos_b64_10+50": ("plus", NB + LR3 + P2COS + B64 + _epochs(10, 50)),
    "nb_lr3e-3_p2cos_0+40": ("plus", NB + LR3 + P2COS + _epochs(0, 40)),
    "fast_0+6": ("fast", NB + LR3 + P2COS + _epochs(0, 6)),
    "fast_0+8": ("fast", NB + LR3 + P2COS + _epochs(0, 8)),
    "fast_0+12": ("fast", NB + LR3 + P2COS + _epochs(0, 12)),
    "fast_1+8": ("fast", NB + LR3 + P2COS + _epochs(1, 8)),
    "fast_2+6": ("fast", NB + LR3 + P2COS + _epochs(2, 6)),
    "fast_3+5": ("fast", NB + LR3 + P2COS + _epochs(3, 5)),
    "fast_4+4": ("fast", NB + LR3 + P2COS + _epochs(4, 4)),
}
STAGES = {"screen": (["resnet20"], [2.1]), "confirm": (["resnet20", "resnet56"], [2.1, 3.0])}
FIELDS = ["stage", "model", "target", "config", "kind", "flags", "penalty_epochs", "rec_epochs", "val_top1",
          "val_top1_dense", "macs_reduction", "seconds"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stage", choices=list(STAGES), required=True)
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument("--models", nargs="+", help="override the stage's models")
    p.add_argument("--targets", nargs="+", type=float, help="override the stage's MACs targets")
    p.add_argument("--checkpoints", default="../shared/models/cifar10/{model}.th")
    p.add_argument("--data", default="imagefolder:../shared/data/cifar10-jpg")
    p.add_argument("--samples", type=int, default=512)
    p.add_argument("--jobs", type=int, default=2, help="jobs at a time, one thread each")
    p.add_argument("--reuse", action="store_true", help="read back jobs that already finished")
    p.add_argument("--out", type=Path, default=Path("results/benchmarks/tune_psp"))
    args = p.parse_args()
    models, targets = STAGES[args.stage]
    models, targets = args.models or models, args.targets or targets
    cells = [(m, t, c) for m in models for t in targets for c in args.configs]

    def job(cell: tuple[str, float, str]) -> dict:
        model, target, name = cell
        kind, flags = CONFIGS[name]
        tag = f"{model}_{target}_{name}"
        m = run_job(["--method", "psp", "--model", model, "--checkpoint", args.checkpoints.format(model=model),
                     "--data", args.data, "--normalize", "imagenet", "--target-macs", str(target),
                     "--samples", str(args.samples), "--seed", "0", "--threads", "1", "--latency-repeats", "0",
                     "--validation-size", "5000", "--eval-split", "validation", *flags],
                    args.out / "jobs" / tag, args.out / "jobs" / f"{tag}.log", reuse=args.reuse)
        s = m["settings"]
        row = {"stage": args.stage, "model": model, "target": target, "config": name, "kind": kind,
               "flags": " ".join(flags), "penalty_epochs": s["penalty_epochs"], "rec_epochs": s["rec_epochs"],
               "val_top1": m["top1"], "val_top1_dense": m["top1_dense"], "macs_reduction": m["macs_reduction"],
               "seconds": m["seconds"]}
        print(f"{tag}: val top-1 {row['val_top1']:.4f} ({row['seconds']:.0f} s)", flush=True)
        return row

    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(job, cells))
    path = args.out / "tune_psp.csv"
    kept = []
    if path.is_file():
        with path.open() as f:
            kept = [r for r in csv.DictReader(f) if r["stage"] != args.stage or r["config"] not in args.configs]
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, FIELDS)
        w.writeheader()
        w.writerows(kept + rows)
    print(f"\nmean validation top-1 over {len(models) * len(targets)} cells ({args.stage}):")
    means = {c: sum(r["val_top1"] for r in rows if r["config"] == c) / (len(cells) // len(args.configs))
             for c in args.configs}
    for c in sorted(means, key=means.get, reverse=True):
        print(f"  {CONFIGS[c][0]:4}  {c:16} {100 * means[c]:.2f}")


if __name__ == "__main__":
    main()
