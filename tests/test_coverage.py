"""Structure coverage: every torchvision classifier and the named timm CNN families either prune to 2x MACs within
±2 % with removal == masking, or are refused before any work in one line naming the model and the construct. The
default run checks one member per architecture and outcome; the whole matrix is marked ``matrix`` (in .ci/run).

Each member must keep the outcome recorded in ``results/reference/coverage/coverage.json`` (the run that wrote the
README table), so a model that stops pruning, or starts pruning, fails here until the table is regenerated.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from psp.data.spec import DataSpec
from psp.models import create_model
from psp.structure.coverage import (
    README_END,
    README_START,
    TARGET,
    architecture,
    markdown,
    matrix,
    outcome,
    write_readme,
)
from psp.structure.selection import TARGET_TOLERANCE

ROOT = Path(__file__).resolve().parents[1]
RECORDED = {r["model"]: r for r in json.loads((ROOT / "results/reference/coverage/coverage.json").read_text())}
# Removed vs masked on this CPU, in float32: reorderings only (the probe's own TOLERANCE is wider, for GPU kernels).
CPU_EXACT = 1e-4
SLOW_SECONDS = 10  # members that took longer in the recorded run are marked slow (they still run in CI)


def _members() -> list:
    """Every member; the quickest of each architecture and outcome stands for the others in the default run, the
    rest are marked ``matrix`` (run by .ci/run, or ``pytest -m matrix``)."""
    def seconds(name: str) -> float:
        return RECORDED.get(name, {}).get("seconds", 0)

    stands_for: dict[tuple[str, str], str] = {}
    for _, name in sorted(matrix(), key=lambda row: seconds(row[1])):
        stands_for.setdefault((architecture(name), RECORDED.get(name, {}).get("status", "")), name)
    params = []
    for _, name in matrix():
        marks = [] if name in stands_for.values() else [pytest.mark.matrix]
        if seconds(name) > SLOW_SECONDS:
            marks.append(pytest.mark.slow)
        params.append(pytest.param(name, id=name, marks=marks))
    return params


def test_matrix_is_recorded():
    """Every member of the matrix (all of torchvision's classifiers, today's list) has a recorded outcome."""
    assert sorted(n for _, n in matrix()) == sorted(RECORDED)


def test_readme_table_is_the_recorded_run(tmp_path):
    rows = [RECORDED[n] for _, n in matrix()]
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{README_START}\n{README_END}\nrest\n")
    write_readme(readme, rows)
    text = (ROOT / "README.md").read_text()
    assert readme.read_text().split(README_START)[1].split(README_END)[0] == \
        text.split(README_START)[1].split(README_END)[0]
    assert markdown(rows) in text


@pytest.mark.parametrize("name", _members())
def test_prunes_to_target_or_is_refused(name):
    got = outcome(name)
    assert got["status"] == RECORDED[name]["status"], got.get("reason")
    if got["status"] == "pruned":
        assert abs(got["reduction"] / TARGET - 1) <= TARGET_TOLERANCE
        assert got["difference"] <= CPU_EXACT
    else:
        reason = got["reason"]
        assert reason.startswith(f"model {name} cannot be pruned: ") and "\n" not in reason


def _foreign_checkpoint(tmp_path: Path, name: str, size: int) -> Path:
    """A plain state dict of ``name`` for 1-channel, 10-class images (what a user brings from elsewhere)."""
    torch.manual_seed(0)
    path = tmp_path / f"{name.replace(':', '_')}.pt"
    torch.save(create_model(name, DataSpec("mnist5k", 1, size, 10)).state_dict(), path)
    return path


def _prune(tmp_path: Path, name: str, method: str, size: int = 32, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "psp", "prune", "--method", method, "--model", name, "--data", "mnist5k",
         "--normalize", "mnist", "--image-size", str(size),
         "--checkpoint", str(_foreign_checkpoint(tmp_path, name, size)), "--target-macs", "2",
         "--latency-repeats", "0", "--samples", "16", "--out", str(tmp_path / "run"), *extra],
        capture_output=True, text=True, timeout=300)


def test_cli_refuses_before_any_work(tmp_path):
    result = _prune(tmp_path, "tv:swin_t", "psp", 64)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "tv:swin_t" in lines[0] and "ShiftedWindowAttention" in lines[0]
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
@pytest.mark.parametrize(("name", "method", "extra"), [
    ("timm:regnetx_002", "oneshot", ()),
    ("tv:shufflenet_v2_x0_5", "psp", ("--penalty-epochs", "1", "--rec-epochs", "1"))])
def test_cli_prunes_to_target(tmp_path, name, method, extra):
    """Grouped convolutions (RegNetX) and channel gathers (ShuffleNet, through PSP's penalty and reconstruction)
    reach the target from the command line, and the pruned model reloads."""
    result = _prune(tmp_path, name, method, 32, *extra)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert abs(metrics["macs_reduction"] / TARGET - 1) <= TARGET_TOLERANCE
    assert metrics["image_size"] == 32 and metrics["image_size_native"] == 28
    evaluated = subprocess.run([sys.executable, "-m", "psp", "eval", "--checkpoint", str(tmp_path / "run/model.pt"),
                                "--latency-repeats", "0"], capture_output=True, text=True, timeout=300)
    assert evaluated.returncode == 0, evaluated.stderr
