"""benchmarks/train_throughput.py: its help, and one tiny real run of the current checkout."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "train_throughput.py"

pytestmark = pytest.mark.timeout(300)


def test_help():
    out = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "images trained per second" in out.stdout


def test_tiny_run_reports_images_per_second(tmp_path):
    """One epoch of 128 mnist5k images on resnet8_tiny: a positive rate, the images counted, the settings recorded."""
    out = tmp_path / "t.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--model", "resnet8_tiny", "--data", "mnist5k", "--epochs", "1",
                           "--subset", "128", "--batch-size", "64", "--repeats", "1", "--device", "cpu",
                           "--threads", "1", "--out", str(out)], capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert list(result["sides"]) == ["after"]
    side = result["sides"]["after"]
    assert side["images_per_s_median"] > 0 and side["runs"][0]["images"] == 128
    assert side["runs"][0]["settings"]["channels_last"] is False
