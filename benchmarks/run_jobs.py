"""Run ``psp prune`` jobs one after another, each in its own process, and record its metrics and peak memory.

Peak memory is the job's own maximum resident set size (``os.wait4``), so jobs do not inflate each other's figure.
Shared by the benchmark scripts; not a library module.
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
    runs the ``psp`` of another checkout (e.g. an earlier commit, for a side-by-side time).
    """
    record = log.with_suffix(".json")
    if reuse and record.is_file():
        return json.loads(record.read_text())
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "psp.cli", "prune", *args, "--out", str(out)]
    start = time.perf_counter()
    with log.open("w") as f:
        env = os.environ | {"PYTHONPATH": pythonpath} if pythonpath else None
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"job failed ({log}): {' '.join(cmd)}")
    metrics = json.loads((out / "metrics.json").read_text())
    metrics["peak_rss_mib"] = usage.ru_maxrss / 1024
    metrics["wall_s"] = time.perf_counter() - start
    record.write_text(json.dumps(metrics, indent=2))
    return metrics


def add_job_arguments(p: argparse.ArgumentParser) -> None:
    """The job every benchmark here shares: the public ResNet-56 on the JPEG CIFAR-10 copy at a MACs target."""
    p.add_argument("--checkpoint", default="../shared/models/cifar10/resnet56.th")
    p.add_argument("--data", default="imagefolder:../shared/data/cifar10-jpg")
    p.add_argument("--target", type=float, default=2.1)
    p.add_argument("--samples", type=int, default=512)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reuse", action="store_true", help="read back jobs that already finished")
