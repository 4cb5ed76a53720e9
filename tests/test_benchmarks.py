"""Every script in benchmarks/ runs: its ``--help`` exits 0 with a usage (a new script is tested by being there),
and compare_tables sets measured columns aside but not results."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.mark.parametrize("script", sorted(BENCHMARKS.glob("*.py")), ids=lambda path: path.name)
def test_help(script: Path) -> None:
    out = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"usage: {script.name}")


def test_compare_tables_sets_aside_measured_columns_only(tmp_path: Path) -> None:
    runs = pd.DataFrame({"method": ["psp", "l1"], "top1": [0.6, 0.7], "seconds": [100.0, 50.0],
                         "latency_b1": [1e-3, 2e-3], "torch_format_b1": ["channels_last", "contiguous"],
                         "git_commit": ["abc", "abc"]})
    claims = pd.DataFrame({"claim": ["C1", "C8"], "verdict": ["holds", "holds"], "numbers": ["+1", "2 s"]})
    retimed = runs.assign(seconds=[90.0, 60.0], latency_b1=[3e-3, 1e-3], torch_format_b1="contiguous",
                          git_commit="def").iloc[::-1]  # and in another order: job completion order is not compared
    tables = {"first": (runs, claims), "second": (retimed, claims.assign(verdict=["holds", "does not hold"]))}
    for folder, (run_table, claim_table) in tables.items():
        (tmp_path / folder).mkdir()
        for name in ("runs", "comparison", "ablation", "calibration"):
            run_table.to_csv(tmp_path / folder / f"{name}.csv", index=False)
        claim_table.to_csv(tmp_path / folder / "claims.csv", index=False)

    def compare() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(BENCHMARKS / "compare_tables.py"), str(tmp_path / "first"),
                               str(tmp_path / "second")], capture_output=True, text=True)

    same = compare()
    assert same.returncode == 0, same.stdout + same.stderr
    assert "runs: identical (2 rows, 2 of 6 columns compared)" in same.stdout
    runs.assign(top1=[0.6, 0.71]).to_csv(tmp_path / "second" / "runs.csv", index=False)
    differ = compare()
    assert differ.returncode == 1
    assert "runs: column top1: 1 of 2 rows differ" in differ.stdout
