"""Where a ``psp`` command's time goes: the real command under cProfile, its most expensive functions printed.

Runs ``psp.cli.main`` on the arguments given after ``--`` in this process, so what is profiled is the registered
method and the library as ``psp prune`` runs them (any method, model, data and settings), not a copy. Prints the top
functions by ``--sort``: ``cumulative`` (with their callees: the phases, e.g. ``run_psp``, ``_reconstruct``,
``evaluate``) or ``tottime`` (their own time: the torch operators, shown as built-in calls). The raw profile is saved
for ``python -m pstats FILE``. On CUDA, kernels run asynchronously: their time lands where the host waits.

    python benchmarks/profile_psp.py --top 30 -- prune --method psp --model resnet56 \\
        --checkpoint ../shared/models/cifar10/resnet56.th --data imagefolder:../shared/data/cifar10-jpg \\
        --normalize imagenet --target-macs 2.1 --penalty-epochs 1 --rec-epochs 1 --threads 2 \\
        --latency-repeats 0 --out /tmp/profile-psp
"""

import argparse
import cProfile
import pstats
import sys
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="example:\n" + __doc__.split("\n\n")[-1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--top", type=int, default=30, help="functions to print (default: %(default)s)")
    p.add_argument("--sort", choices=("cumulative", "tottime"), default="cumulative",
                   help="order of the functions (default: %(default)s)")
    p.add_argument("--stats", type=Path, default=Path("results/benchmarks/profile_psp.prof"),
                   help="where to save the raw profile (default: %(default)s)")
    p.add_argument("command", nargs="*", help="the psp command to profile, after --: prune --method psp ...")
    args = p.parse_args()
    if not args.command:
        p.error("give the psp command to profile after --, e.g. -- prune --method psp ...")
    from psp.cli import main as psp_main  # after parsing: --help needs no torch

    profiler = cProfile.Profile()
    code = profiler.runcall(psp_main, args.command)
    args.stats.parent.mkdir(parents=True, exist_ok=True)
    profiler.dump_stats(args.stats)
    pstats.Stats(profiler).strip_dirs().sort_stats(args.sort).print_stats(args.top)
    print(f"psp exited {code}; raw profile: {args.stats}")
    return code


if __name__ == "__main__":
    sys.exit(main())
