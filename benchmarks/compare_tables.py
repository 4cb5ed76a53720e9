"""Compare the tables of two workflow runs in every column except measured times (and the commit that ran).

Two executions of one design (local and SLURM, before and after a kill and resume, two machines) must agree on
every number but the clock: this prints, per table, "identical" or the columns and rows that differ, and exits 1
when any table differs.

    python benchmarks/compare_tables.py results/tables /tmp/slurm-run/results/tables
"""

import argparse
import sys
from pathlib import Path

import pandas as pd

TABLES = ("runs", "comparison", "ablation", "calibration", "claims")
TIMED = ("seconds", "latency", "speedup", "time")  # column names holding measured times or their ratios
PROVENANCE = ("git_commit",)  # which commit ran: differs between runs of one design made at different commits


def untimed(frame: pd.DataFrame) -> pd.DataFrame:
    """The table without its timed columns, rows in a fixed order so that job completion order does not matter."""
    kept = frame[[c for c in frame.columns if not any(word in c for word in TIMED) and c not in PROVENANCE]]
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
    args = p.parse_args()
    differ = False
    for name in TABLES:
        paths = [folder / f"{name}.csv" for folder in (args.first, args.second)]
        missing = [str(path) for path in paths if not path.is_file()]
        if missing:
            print(f"{name}: missing {', '.join(missing)}")
            differ = True
            continue
        a, b = (pd.read_csv(path) for path in paths)
        found = differences(untimed(a), untimed(b))
        kept = len(untimed(a).columns)
        print(f"{name}: " + ("; ".join(found) if found else f"identical ({len(a)} rows, {kept} of {len(a.columns)} "
                                                             "columns compared; timed columns and git_commit skipped)"))
        differ |= bool(found)
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
