"""Several runs in one process (`psp prune --run ...`, what a workflow job does) make exactly what each run makes
alone, apart from timing: same metrics, selection, calibration draw and weights, for methods of every data use."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from psp import pipeline
from psp.cli import main
from psp.errors import UsageError
from psp.settings import PruneSettings

pytestmark = pytest.mark.timeout(300)

OPTS = pipeline.RunOptions(threads=1, device="cpu", latency_repeats=0)
TIMED = ("seconds", "seconds_total", "peak_rss_mib")  # clock and memory readings
RUNS = [{"target_macs": 2.0, "samples": 32, "seed": 0}, {"ratio": 0.3, "samples": 32, "seed": 1},
        {"target_macs": 1.5, "samples": 48, "seed": 0}]
CHEAP = {"penalty_epochs": 1, "rec_epochs": 1, "epochs": 1, "train_subset": 256}


def _untimed(metrics: dict, out: Path) -> dict:
    """metrics.json without its clock readings, its own folder's name replaced (files it names live there)."""
    text = json.dumps({k: v for k, v in metrics.items() if k not in TIMED}).replace(str(out), "OUT")
    return json.loads(text)


@pytest.mark.parametrize("method", ["oneshot", "psp", "l1"])  # uses none, calibration (trains), labels
def test_runs_in_one_process_equal_runs_alone(trained, tmp_path, method):
    batch = [(PruneSettings(**CHEAP, **run), tmp_path / "batch" / str(i)) for i, run in enumerate(RUNS)]
    together = pipeline.prune_runs(method, str(trained.checkpoint), None, None, None, batch, OPTS)
    for (settings, out), metrics in zip(batch, together, strict=True):
        alone = tmp_path / "alone" / out.name
        single = pipeline.prune_run(method, str(trained.checkpoint), None, None, None, settings, alone, OPTS)
        assert _untimed(metrics, out) == _untimed(single, alone)
        assert (out / "selection.json").read_text() == (alone / "selection.json").read_text()
        assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in alone.iterdir())
        a, b = (torch.load(d / "model.pt", weights_only=True)["state_dict"] for d in (out, alone))
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_command_line_takes_runs_and_refuses_a_malformed_one(trained, tmp_path, capsys):
    runs = [f"target={t},samples=32,seed={s},out={tmp_path / name}" for t, s, name in
            (("2.0", 0, "a"), ("r0.3", 1, "b"))]
    args = ["prune", "--method", "oneshot", "--checkpoint", str(trained.checkpoint), "--threads", "1",
            "--latency-repeats", "0"]
    assert main(args + [a for run in runs for a in ("--run", run)]) == 0
    a, b = (json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("a", "b"))
    assert (a["target_macs"], a["ratio"], a["seed"]) == (2.0, None, 0)
    assert (b["target_macs"], b["ratio"], b["seed"]) == (None, 0.3, 1)
    capsys.readouterr()
    assert main(args + ["--run", "target=2.0,samples=32,out=x"]) == 2  # no seed
    assert "is not target=T,samples=N,seed=S,out=DIR" in capsys.readouterr().err
    assert main(args + ["--run", "target=0.5,samples=32,seed=0,out=x"]) == 2  # a ratio must be spelled r0.5
    assert "is not a MACs reduction above 1" in capsys.readouterr().err
    assert main(args + ["--run", runs[0], "--out", str(tmp_path / "c")]) == 2
    assert "--out cannot be given with --run" in capsys.readouterr().err


def test_a_variant_records_the_settings_it_ran_with(trained, tmp_path):
    """psp_fast fixes its epochs and learning rate, psp_random its importance: metrics.json records (and hashes)
    those, not the values asked for; `overrides` keeps the difference."""
    asked = PruneSettings(**CHEAP, target_macs=2.0, samples=32, lr=0.001, importance="l2")
    fast = pipeline.prune_run("psp_fast", str(trained.checkpoint), None, None, None, asked, tmp_path / "f", OPTS)
    assert (fast["settings"]["rec_epochs"], fast["settings"]["penalty_epochs"], fast["settings"]["lr"]) == (8, 0, 3e-3)
    assert fast["overrides"]["rec_epochs"] == 8
    rand = pipeline.prune_run("psp_random", str(trained.checkpoint), None, None, None, asked, tmp_path / "r", OPTS)
    assert rand["importance"] == rand["settings"]["importance"] == "random"
    plain = pipeline.prune_run("psp", str(trained.checkpoint), None, None, None, asked, tmp_path / "p", OPTS)
    assert plain["settings"]["importance"] == "l2" and rand["settings_hash"] != plain["settings_hash"]


def test_a_budget_scales_the_epochs_that_ran(trained, tmp_path):
    """A budget-ladder rung multiplies the method's registered budget settings, after a variant's own: psp_fast at
    budget 2 runs 16 phase-2 epochs (its 8, doubled) and still no phase 1, and spends more compute than at budget 1."""
    def run(method: str, budget: float, name: str) -> dict:
        s = PruneSettings(target_macs=2.0, samples=32, penalty_epochs=2, rec_epochs=2, budget=budget)
        return pipeline.prune_run(method, str(trained.checkpoint), None, None, None, s, tmp_path / name, OPTS)

    doubled, own = run("psp_fast", 2, "fast2"), run("psp_fast", 1, "fast1")
    assert (doubled["settings"]["rec_epochs"], doubled["settings"]["penalty_epochs"]) == (16, 0)
    assert doubled["settings"]["budget"] == 2 and doubled["method_flops"] > own["method_flops"]
    halved = run("psp", 0.5, "psp_half")
    assert (halved["settings"]["penalty_epochs"], halved["settings"]["rec_epochs"]) == (1, 1)
    with pytest.raises(UsageError, match="budget 2: method oneshot registers no budget settings"):
        run("oneshot", 2, "oneshot2")
    assert not (tmp_path / "oneshot2").exists()


def test_the_command_line_takes_a_budget_per_run(trained, tmp_path):
    args = ["prune", "--method", "psp", "--checkpoint", str(trained.checkpoint), "--threads", "1",
            "--latency-repeats", "0", "--penalty-epochs", "1", "--rec-epochs", "2"]
    for name, extra in (("own", ""), ("x3", ",budget=3")):
        args += ["--run", f"target=2.0,samples=32,seed=0,out={tmp_path / name}{extra}"]
    assert main(args) == 0
    own, x3 = (json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("own", "x3"))
    assert (own["settings"]["budget"], own["settings"]["rec_epochs"]) == (1, 2)
    assert (x3["settings"]["budget"], x3["settings"]["penalty_epochs"], x3["settings"]["rec_epochs"]) == (3, 3, 6)


PROBE_MODULE = '''"""A method that trains (its budget: epochs) and says whether torch._dynamo was imported before it."""
import sys

from psp.methods import get_method, register_method


@register_method("dynamo_probe", uses="none", budget=("epochs",), summary="test only")
def dynamo_probe(ctx):
    print("torch._dynamo imported before the method:", "torch._dynamo" in sys.modules, file=sys.stderr)
    return get_method("oneshot").run(ctx)
'''


def test_the_first_run_does_not_time_the_optimizers_import(trained, tmp_path):
    """torch.optim imports torch._dynamo at its first step (1.1-1.4 s): a job of a method that trains imports it
    before the first run's clock starts, so that run's seconds are its method's, as every later run's are."""
    (tmp_path / "probe_method.py").write_text(PROBE_MODULE)
    argv = ["prune", "--method", "dynamo_probe", "--method-module", "probe_method", "--checkpoint",
            str(trained.checkpoint), "--target-macs", "2", "--latency-repeats", "0", "--threads", "1",
            "--out", str(tmp_path / "run")]
    env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-m", "psp", *argv], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "torch._dynamo imported before the method: True" in proc.stderr, proc.stderr
