"""Run a ``psp prune`` job in its own process and record its metrics with its peak memory and wall time.

Peak memory is the job's own maximum resident set size (``os.wait4``), so jobs do not inflate each other's figure.
Shared by the benchmark scripts (``run_job``, ``add_job_arguments``); run alone, it runs one job and prints those
figures:

    python benchmarks/run_jobs.py --out /tmp/job -- --method oneshot_bn --model resnet20 \\
        --checkpoint ../shared/models/cifar10/resnet20.th --data imagefolder:../shared/data/cifar10-jpg \\
        --normalize imagenet --target-macs 2.1 --threads 2
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def run_job(args: list[str], out: Path, log: Path, reuse: bool = False, pythonpath: str | None = None) -> dict:
    """``psp prune ARGS --out OUT``; returns its metrics.json plus ``peak_rss_mib`` and ``wall_s``.

    With ``reuse``, a finished job (``job.json`` beside its log) is read back instead of run again. ``pythonpath``
    runs the ``psp`` of another checkout (e.g. an earlier commit, for a side-by-side time). ``python -m`` puts the
    working directory first on the import path, ahead of PYTHONPATH, so that job runs with ``-P`` (no such entry),
    and its recorded commit must be that checkout's: otherwise the "earlier" job ran today's code.
    """
    record = log.with_suffix(".json")
    if reuse and record.is_file():
        return json.loads(record.read_text())
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, *(["-P"] if pythonpath else []), "-m", "psp.cli", "prune", *args, "--out", str(out)]
    start = time.perf_counter()
    with log.open("w") as f:
        env = os.environ | {"PYTHONPATH": pythonpath} if pythonpath else None
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"job failed ({log}): {' '.join(cmd)}")
    metrics = json.loads((out / "metrics.json").read_text())
    if pythonpath and (ran := metrics.get("git_commit")) != (expected := _head(pythonpath)):
        raise RuntimeError(f"job ran commit {ran}, not {pythonpath}'s {expected} ({log})")
    metrics["peak_rss_mib"] = usage.ru_maxrss / 1024
    metrics["wall_s"] = time.perf_counter() - start
    record.write_text(json.dumps(metrics, indent=2))
    return metrics


def _head(checkout: str) -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=checkout, capture_output=True, text=True,
                          check=True).stdout.strip()


def add_job_arguments(p: argparse.ArgumentParser) -> None:
    """The job every benchmark here shares: the public ResNet-56 on the JPEG CIFAR-10 copy at a MACs target."""
    p.add_argument("--checkpoint", default="../shared/models/cifar10/resnet56.th")
    p.add_argument("--data", default="imagefolder:../shared/data/cifar10-jpg")
    p.add_argument("--target", type=float, default=2.1)
    p.add_argument("--samples", type=int, default=512)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reuse", action="store_true", help="read back jobs that already finished")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="example:\n" + __doc__.split("\n\n")[-1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="the job's psp prune --out folder")
    p.add_argument("--log", type=Path, help="the job's output (default: OUT.log; its record: OUT.json)")
    p.add_argument("--reuse", action="store_true", help="read back the job if it already finished")
    p.add_argument("prune_args", nargs="*", help="psp prune arguments, after --")
    args = p.parse_args()
    if not args.prune_args:
        p.error("give the psp prune arguments after --, e.g. -- --method oneshot_bn --model resnet20 ...")
    m = run_job(args.prune_args, args.out, args.log or args.out.with_suffix(".log"), reuse=args.reuse)
    print(json.dumps({k: m.get(k) for k in ("method", "top1", "macs_reduction", "seconds", "wall_s", "peak_rss_mib")}))


if __name__ == "__main__":
    main()
