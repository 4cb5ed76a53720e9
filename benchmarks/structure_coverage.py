"""Structure coverage: run the matrix of psp.structure.coverage, save the outcomes, write the README's table.

Every torchvision classifier and the named timm CNN families, pruned to 2x MACs with random weights or refused by the
support check naming the construct (``psp.structure.coverage`` says how each model is tried):

    python benchmarks/structure_coverage.py --out results/reference/coverage/coverage.json --readme README.md
    python benchmarks/structure_coverage.py --models tv:resnet18 timm:convnext_atto     # print only
    python benchmarks/structure_coverage.py --outcomes results/reference/coverage/coverage.json --readme README.md
"""

import argparse
import json
import sys
from pathlib import Path

import torch

from psp.structure.coverage import markdown, matrix, outcome, write_readme


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", help="only these (default: the whole matrix)")
    p.add_argument("--readme", type=Path, help="rewrite the coverage table in this README")
    p.add_argument("--out", type=Path, help="write the outcomes as JSON")
    p.add_argument("--outcomes", type=Path, help="render a saved run's JSON instead of running (with --readme)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    family = {name: fam for fam, name in matrix()}
    if args.outcomes:
        rows = json.loads(args.outcomes.read_text())
    else:
        rows = []
        for name in args.models or list(family):
            row = {"family": family.get(name, "other")} | outcome(name)
            rows.append(row)
            print(f"{name:40s} {row['size']:4d}px {row['seconds']:6.1f}s {markdown([row]).splitlines()[-1]}",
                  flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=1))
    if args.readme:
        if args.models and not args.outcomes:
            sys.exit("--readme needs the whole matrix (no --models)")
        write_readme(args.readme, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
