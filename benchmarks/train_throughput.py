"""Training throughput of ``psp train``: images trained per second, data loading included, for one checkout or for
two side by side (``--source DIR``: another checkout, e.g. ``git worktree add /tmp/psp-before 4f822f0``).

Every run is a fresh subprocess whose ``psp`` is the side's checkout (PYTHONPATH and working folder). It parses the
``psp train`` arguments with that checkout's own parser (so each side runs its own defaults: autocast, channels-last)
and calls ``psp.pipeline.train_run`` as the command does, with ``--subset`` images per epoch and latency timing off.
images/s = images trained / ``metrics["seconds"]`` (the training loop: reading, augmenting and normalising batches,
forward, backward, step); wall_s is the whole subprocess (interpreter, imports, data load, training, evaluation).
Before the timed runs each side loads the data once, untimed (prepare_s: it fills the decoded-image cache and the
OS file cache); the timed runs then alternate between the sides (ABAB), and min/median per side and the ratio of
the medians are printed and written as JSON.

    python benchmarks/train_throughput.py --source /tmp/psp-before --model resnet20 \\
        --data imagefolder:/work/shared/data/cifar10-jpg --subset 5000 --device cpu
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent  # the checkout holding this script: the "after" side

CHILD = """
import json, sys
from pathlib import Path
import psp
from psp import pipeline
from psp.cli import build_parser
from psp.train import TrainSettings

job = json.loads(sys.argv[1])
if not Path(psp.__file__).resolve().is_relative_to(Path(job["checkout"]).resolve()):
    sys.exit(f"psp imported from {psp.__file__}, not from {job['checkout']}")
if job["prepare"]:
    from psp.data.datasets import load_data

    print(json.dumps({"train_images": len(load_data(job["data"]).train)}))
    sys.exit(0)
args = build_parser().parse_args(job["argv"])
fields = TrainSettings.__dataclass_fields__
given = {k: getattr(args, k) for k in ("lr", "batch_size", "amp", "channels_last") if k in fields and hasattr(args, k)}
settings = TrainSettings(subset=job["subset"], **given)
opts = pipeline.RunOptions(threads=args.threads, device=args.device, latency_repeats=0)
m = pipeline.train_run(args.model, args.data, args.epochs, args.seed, args.out, opts, settings, args.normalize,
                       image_size=args.image_size)
print(json.dumps({"seconds": m["seconds"], "top1": m["top1"], "final_loss": m["final_loss"],
                  "settings": m["settings"], "device": m["device"]}))
"""


def _absolute_data(data: str) -> str:
    """The data spec with its root made absolute: the subprocesses run inside their checkouts."""
    kind, sep, root = data.partition(":")
    return f"{kind}:{Path(root).resolve()}" if sep and root else data


def _commit(checkout: Path) -> str | None:
    """The checkout's commit, with ``+dirty`` when its tracked files differ from it."""
    def git(*words: str) -> str | None:
        out = subprocess.run(["git", "-C", str(checkout), *words], capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    return commit and commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def _child(checkout: Path, job: dict) -> tuple[dict, float]:
    """Run the child code in ``checkout``; its JSON result and the wall seconds."""
    env = os.environ | {"PYTHONPATH": str(checkout)}
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(job | {"checkout": str(checkout)})], cwd=checkout,
                         env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if out.returncode != 0:
        sys.exit(f"run in {checkout} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1]), wall


def _train_argv(args: argparse.Namespace, out: Path) -> list[str]:
    argv = ["train", "--model", args.model, "--data", _absolute_data(args.data), "--epochs", str(args.epochs),
            "--seed", str(args.seed), "--batch-size", str(args.batch_size), "--out", str(out),
            "--device", args.device]
    return argv + (["--threads", str(args.threads)] if args.threads else [])


def measure(args: argparse.Namespace) -> dict:
    """Prepare each side, then alternate timed runs between them; the figures as a dict."""
    sides = ({"before": args.source.resolve()} if args.source else {}) | {"after": HERE}
    result = {"command": sys.argv, "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
              "sides": {}}
    for name, checkout in sides.items():
        prepared, wall = _child(checkout, {"prepare": True, "data": _absolute_data(args.data)})
        n = min(args.subset or prepared["train_images"], prepared["train_images"])
        result["sides"][name] = {"checkout": str(checkout), "commit": _commit(checkout), "prepare_s": wall,
                                 "images_per_epoch": n, "runs": []}
        print(f"{name}: {checkout} prepared in {wall:.1f} s", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for name, checkout in sides.items():
                side = result["sides"][name]
                out = Path(tmp) / f"{name}{repeat}"
                run, wall = _child(checkout, {"prepare": False, "argv": _train_argv(args, out), "subset": args.subset})
                images = side["images_per_epoch"] * args.epochs
                run |= {"images": images, "images_per_s": images / run["seconds"], "wall_s": wall}
                side["runs"].append(run)
                print(f"{name} run {repeat + 1}: {run['images_per_s']:.1f} images/s (training {run['seconds']:.1f} s, "
                      f"command {wall:.1f} s, top1 {run['top1']:.4f})", flush=True)
    for side in result["sides"].values():
        rates, walls = [r["images_per_s"] for r in side["runs"]], [r["wall_s"] for r in side["runs"]]
        side |= {"images_per_s_min": min(rates), "images_per_s_median": statistics.median(rates),
                 "images_per_s_max": max(rates), "wall_s_min": min(walls), "wall_s_median": statistics.median(walls)}
    if "before" in result["sides"]:
        before, after = result["sides"]["before"], result["sides"]["after"]
        result["ratio_images_per_s_median"] = after["images_per_s_median"] / before["images_per_s_median"]
        result["ratio_wall_s_median"] = before["wall_s_median"] / after["wall_s_median"]
    return result


def report(result: dict) -> str:
    lines = [f"{'side':8s} {'images/s min':>13s} {'median':>9s} {'max':>9s} {'command s median':>17s}  commit"]
    for name, s in result["sides"].items():
        lines.append(f"{name:8s} {s['images_per_s_min']:13.1f} {s['images_per_s_median']:9.1f} "
                     f"{s['images_per_s_max']:9.1f} {s['wall_s_median']:17.1f}  {s['commit']}")
    if "ratio_images_per_s_median" in result:
        lines.append(f"after/before: {result['ratio_images_per_s_median']:.2f}x images/s (medians), "
                     f"{result['ratio_wall_s_median']:.2f}x faster command")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="resnet20")
    p.add_argument("--data", default="imagefolder:../shared/data/cifar10-jpg")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--subset", type=int, help="train on the first N images of a seeded permutation, per epoch")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    p.add_argument("--threads", type=int, help="torch CPU threads in each run (default: torch's)")
    p.add_argument("--source", type=Path, help="another checkout to compare against (the 'before' side)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per side, alternating between the sides")
    p.add_argument("--out", type=Path, default=Path("results/benchmarks/train_throughput.json"))
    args = p.parse_args()
    for name in ("epochs", "repeats", "batch_size"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} {getattr(args, name)} must be >= 1")
    if args.subset is not None and args.subset < 1:
        p.error(f"--subset {args.subset} must be >= 1")
    if args.source and not (args.source / "psp" / "pipeline.py").is_file():
        p.error(f"--source {args.source} is not a psp-bench checkout (no psp/pipeline.py)")
    result = measure(args)
    print(report(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
