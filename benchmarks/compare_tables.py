"""Compare the tables of two workflow runs in every column except measured times (and the commit that ran).

Two executions of one design (local and SLURM, before and after a kill and resume, two machines) must agree on
every number but the clock: this prints, per table, "identical" or the columns and rows that differ, and exits 1
when any table differs. Skipped: columns of measured times and memory (names containing one of ``MEASURED_WORDS``),
git_commit, and the numbers and verdict of C8 (a claim about running time).

    python benchmarks/compare_tables.py results/tables /tmp/slurm-run/results/tables
"""

import argparse
import sys
from pathlib import Path

import pandas as pd

TABLES = ("runs", "comparison", "ablation", "calibration", "claims")
PROVENANCE = ("git_commit",)  # which commit ran: differs between runs of one design made at different commits
TIMED_CLAIMS = ("C8",)  # claims about running time: their numbers and verdict come from measured seconds
# Columns whose values vary between identical runs: times, memory, and the memory format chosen by timing
# (torch_format_*). Everything else in a table is a function of the runs' accuracy and size.
MEASURED_WORDS = ("seconds", "latency", "speedup", "max_rss", "peak_rss", "torch_format")


def is_measured_column(name: str) -> bool:
    return any(word in name for word in MEASURED_WORDS)


def untimed(frame: pd.DataFrame, skip: tuple[str, ...] = ()) -> pd.DataFrame:
    """The table without its timed columns (and the timed claims' numbers and verdict), rows in a fixed order so
    that job completion order does not matter."""
    dropped = set(PROVENANCE) | set(skip)
    kept = frame[[c for c in frame.columns if not is_measured_column(c) and c not in dropped]].copy()
    if "claim" in kept.columns:
        kept.loc[kept["claim"].isin(TIMED_CLAIMS), ["verdict", "numbers"]] = "(measured time)"
    return kept.sort_values(list(kept.columns)).reset_index(drop=True)


def differences(a: pd.DataFrame, b: pd.DataFrame) -> list[str]:
    """What differs between two untimed tables (empty when they are identical)."""
    if list(a.columns) != list(b.columns):
        return [f"columns differ: {sorted(set(a.columns) ^ set(b.columns))}"]
    if len(a) != len(b):
        return [f"{len(a)} rows against {len(b)}"]
    unequal = (a != b) & ~(a.isna() & b.isna())
    return [f"column {c}: {int(unequal[c].sum())} of {len(a)} rows differ" for c in a.columns if unequal[c].any()]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("first", type=Path, help="a results/tables folder")
    p.add_argument("second", type=Path, help="another results/tables folder")
    p.add_argument("--skip", action="append", default=[], metavar="COLUMN",
                   help="also skip this column (e.g. one that a newer commit added to runs.csv)")
    args = p.parse_args()
    skip = tuple(args.skip)
    differ = False
    for name in TABLES:
        paths = [folder / f"{name}.csv" for folder in (args.first, args.second)]
        missing = [str(path) for path in paths if not path.is_file()]
        if missing:
            print(f"{name}: missing {', '.join(missing)}")
            differ = True
            continue
        a, b = (pd.read_csv(path) for path in paths)
        found = differences(untimed(a, skip), untimed(b, skip))
        kept = len(untimed(a, skip).columns)
        print(f"{name}: " + ("; ".join(found) if found else f"identical ({len(a)} rows, {kept} of {len(a.columns)} "
                                                             "columns compared)"))
        differ |= bool(found)
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
