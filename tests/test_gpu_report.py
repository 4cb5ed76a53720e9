"""benchmarks/gpu_report.py, the report of benchmarks/gpu_check.sh, on CPU: it reads real `psp prune` folders,
passes when the devices agree, and fails naming the disagreement when the exact method's selection differs."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[1]


def report(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_report.py"), str(folder), *args],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def oneshot_run(trained, tmp_path_factory) -> Path:
    """A real `psp prune --method oneshot` folder of the tiny trained model."""
    from psp import pipeline
    from psp.settings import PruneSettings

    out = tmp_path_factory.mktemp("oneshot")
    pipeline.prune_run("oneshot", str(trained.checkpoint), None, None, None, PruneSettings(target_macs=2.0, samples=32),
                       out, pipeline.RunOptions(threads=1, device="cpu", latency_repeats=1))
    return out


def test_agreeing_devices_pass(oneshot_run, tmp_path):
    for device in ("cpu", "cuda"):
        shutil.copytree(oneshot_run, tmp_path / device / "oneshot")
    (tmp_path / "epoch" / "vgg19_cifar").mkdir(parents=True)  # gpu_check's training runs: no selection.json
    (tmp_path / "epoch" / "vgg19_cifar" / "metrics.json").write_text("{}")
    result = report(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [c["channels_differing"] for c in summary["agreement"]] == [0]
    assert "| cuda | oneshot |" in result.stdout and (tmp_path / "summary.md").is_file()


def test_a_different_selection_fails(oneshot_run, tmp_path):
    for device in ("cpu", "cuda"):
        shutil.copytree(oneshot_run, tmp_path / device / "oneshot")
    path = tmp_path / "cuda" / "oneshot" / "selection.json"
    selection = json.loads(path.read_text())
    group = next(g for g, removed in selection.items() if removed)
    selection[group] = selection[group][1:]
    path.write_text(json.dumps(selection))
    result = report(tmp_path)
    assert result.returncode == 3 and "disagree" in result.stderr
    assert json.loads((tmp_path / "summary.json").read_text())["agreement"][0]["channels_differing"] == 1
    assert report(tmp_path, "--exact").returncode == 0  # reported, not failed, for a method that trains


def test_a_method_missing_on_one_device_fails(oneshot_run, tmp_path):
    shutil.copytree(oneshot_run, tmp_path / "cuda" / "oneshot")
    result = report(tmp_path)
    assert result.returncode == 3 and "missing on one device: oneshot" in result.stdout


def test_gpu_check_names_what_it_needs(tmp_path):
    """benchmarks/gpu_check.sh assumes no ../shared: run from another folder without its inputs, it stops in one line
    naming them; with them, on a machine without CUDA, it stops naming that."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PSP_")} | {"PYTHON": sys.executable}
    script = str(ROOT / "benchmarks" / "gpu_check.sh")
    result = subprocess.run(["bash", script, str(tmp_path / "out")], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1 and "set PSP_CHECKPOINT" in result.stderr
    checkpoint = tmp_path / "resnet56.th"
    checkpoint.write_bytes(b"")
    env |= {"PSP_CHECKPOINT": str(checkpoint), "PSP_DATA": f"imagefolder:{tmp_path / 'nowhere'}"}
    result = subprocess.run(["bash", script, str(tmp_path / "out")], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1 and "nowhere does not exist (PSP_DATA)" in result.stderr
    if torch_sees_cuda():
        return
    env["PSP_DATA"] = "mnist5k"
    result = subprocess.run(["bash", script, str(tmp_path / "out")], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1 and "no CUDA device visible" in result.stderr
    assert not (tmp_path / "out").exists()


def torch_sees_cuda() -> bool:
    import torch

    return torch.cuda.is_available()
