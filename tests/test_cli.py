"""The ``psp`` command: bad input ends with exit code 2 and one 'psp: error:' line; happy paths write complete,
reproducible results that ``psp eval`` reproduces."""

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from psp.cli import main

pytestmark = pytest.mark.timeout(300)

METRIC_KEYS = {"top1", "top1_dense", "macs", "macs_dense", "params", "params_dense", "rf", "rp", "latency_b1",
               "latency_b64", "latency_b1_dense", "latency_b64_dense", "seconds", "seconds_total", "method", "model",
               "importance", "selection", "samples", "seed", "calib_indices_file"}
VOLATILE = ("latency", "seconds", "speedup", "torch_format", "peak_rss")  # measured: may differ between identical runs


@pytest.fixture(autouse=True)
def _cached_mnist(mnist, monkeypatch):
    """In-process runs reuse the session's mnist5k instead of decoding it again (test_data covers loading)."""
    from psp import pipeline

    real = pipeline.load_data
    monkeypatch.setattr(pipeline, "load_data", lambda arg, download=False: mnist if arg == "mnist5k" else
                        real(arg, download))


@pytest.fixture(scope="module")
def files(trained, tmp_path_factory):
    """Bad files for the command line, next to the trained checkpoint."""
    from psp.models import create_model

    d = tmp_path_factory.mktemp("cli_files")
    data = trained.checkpoint.read_bytes()
    (d / "truncated.pt").write_bytes(data[:len(data) // 2])
    (d / "text.pt").write_text("hello\n")
    (d / "sentence.pt").write_text("this is not a checkpoint\n")
    tiny = create_model("resnet8_tiny", _mnist_spec())
    torch.save(tiny.state_dict(), d / "foreign.pt")
    (d / "abc.txt").write_text("1\n2\nabc\n")
    (d / "range.txt").write_text("1\n4000\n")
    (d / "afile").write_text("a regular file\n")
    (d / "other_model.json").write_text(json.dumps({"top1": 0.5, "top5": 0.9, "macs": 123, "eval_split": "test"}))
    return d


def _mnist_spec():
    from psp.data.spec import DataSpec

    return DataSpec("mnist5k", 1, 28, 10)


PRUNE = ["prune", "--method", "oneshot", "--checkpoint", "{ck}", "--out", "{tmp}/o", "--threads", "1"]
BAD_INPUTS = {
    "no_command": [],
    "unknown_command": ["frobnicate"],
    "unknown_flag": PRUNE + ["--ratio", "0.5", "--nonsense"],
    "unknown_model_eval": ["eval", "--checkpoint", "{ck}", "--model", "resnet21"],
    "unknown_model_train": ["train", "--model", "resnet21", "--data", "mnist5k", "--epochs", "1", "--out", "{tmp}/o"],
    "unknown_data_kind": ["eval", "--checkpoint", "{ck}", "--data", "mnist10k"],
    "missing_imagefolder_root": ["eval", "--checkpoint", "{ck}", "--data", "imagefolder:{tmp}/nowhere"],
    "imagefolder_without_root": ["eval", "--checkpoint", "{ck}", "--data", "imagefolder"],
    "missing_cifar": ["eval", "--checkpoint", "{ck}", "--data", "cifar10:{tmp}/nocifar"],
    "unknown_method": ["prune", "--method", "no_such_method", "--checkpoint", "{ck}", "--ratio", "0.5",
                       "--out", "{tmp}/o"],
    "unknown_method_module": PRUNE + ["--ratio", "0.5", "--method-module", "no_such_module_xyz"],
    "unknown_importance": PRUNE + ["--ratio", "0.5", "--importance", "l3"],
    "unknown_normalize": ["eval", "--checkpoint", "{ck}", "--normalize", "zscore"],
    "unknown_device": ["eval", "--checkpoint", "{ck}", "--device", "tpu"],
    "unknown_bn_mode": PRUNE + ["--ratio", "0.5", "--bn-mode", "frozen"],
    "ratio_1.5": PRUNE + ["--ratio", "1.5"],
    "ratio_0": PRUNE + ["--ratio", "0"],
    "ratio_negative": PRUNE + ["--ratio", "-0.2"],
    "ratio_abc": PRUNE + ["--ratio", "abc"],
    "target_0.5": PRUNE + ["--target-macs", "0.5"],
    "target_1": PRUNE + ["--target-macs", "1"],
    "target_unreachable": PRUNE + ["--target-macs", "1e6"],
    "ratio_and_target": PRUNE + ["--ratio", "0.5", "--target-macs", "2"],
    "neither_ratio_nor_target": PRUNE,
    "global_and_uniform": PRUNE + ["--ratio", "0.5", "--global", "--uniform"],
    "samples_0": PRUNE + ["--ratio", "0.5", "--samples", "0"],
    "samples_too_many": ["prune", "--method", "oneshot_bn", "--checkpoint", "{ck}", "--ratio", "0.5",
                         "--samples", "4001", "--out", "{tmp}/o", "--threads", "1"],
    "batch_size_0": PRUNE + ["--ratio", "0.5", "--batch-size", "0"],
    "lr_0": PRUNE + ["--ratio", "0.5", "--lr", "0"],
    "negative_epochs": PRUNE + ["--ratio", "0.5", "--rec-epochs", "-1"],
    "train_negative_epochs": ["train", "--model", "vgg_tiny", "--data", "mnist5k", "--epochs", "-1",
                              "--out", "{tmp}/o"],
    "missing_checkpoint": ["eval", "--checkpoint", "{tmp}/missing.pt"],
    "truncated_checkpoint": ["eval", "--checkpoint", "{files}/truncated.pt"],
    "text_checkpoint": ["eval", "--checkpoint", "{files}/text.pt", "--model", "resnet8_tiny", "--data", "mnist5k"],
    "sentence_checkpoint": ["eval", "--checkpoint", "{files}/sentence.pt"],
    "foreign_checkpoint_other_arch": ["eval", "--checkpoint", "{files}/foreign.pt", "--model", "resnet20",
                                      "--data", "mnist5k"],
    "foreign_checkpoint_without_model": ["eval", "--checkpoint", "{files}/foreign.pt", "--data", "mnist5k"],
    "own_checkpoint_other_model": ["eval", "--checkpoint", "{ck}", "--model", "resnet20"],
    "calib_indices_abc": ["prune", "--method", "oneshot_bn", "--checkpoint", "{ck}", "--ratio", "0.5",
                          "--calib-indices", "{files}/abc.txt", "--out", "{tmp}/o", "--threads", "1"],
    "calib_indices_out_of_range": ["prune", "--method", "oneshot_bn", "--checkpoint", "{ck}", "--ratio", "0.5",
                                   "--calib-indices", "{files}/range.txt", "--out", "{tmp}/o", "--threads", "1"],
    "calib_indices_missing": PRUNE + ["--ratio", "0.5", "--calib-indices", "{tmp}/nope.txt"],
    "out_below_a_file": ["prune", "--method", "oneshot", "--checkpoint", "{ck}", "--ratio", "0.5",
                         "--out", "{files}/afile/o"],
    "eval_out_below_a_file": ["eval", "--checkpoint", "{ck}", "--out", "{files}/afile/metrics.json"],
    "dense_metrics_missing": PRUNE + ["--ratio", "0.5", "--dense-metrics", "{tmp}/nope.json"],
    "dense_metrics_not_json": PRUNE + ["--ratio", "0.5", "--dense-metrics", "{files}/afile"],
    "dense_metrics_other_model": PRUNE + ["--ratio", "0.5", "--dense-metrics", "{files}/other_model.json"],
    "latency_repeats_negative": ["eval", "--checkpoint", "{ck}", "--latency-repeats", "-1"],
    "threads_0": ["eval", "--checkpoint", "{ck}", "--threads", "0"],
    "threads_abc": ["eval", "--checkpoint", "{ck}", "--threads", "abc"],
}


def _argv(template: list[str], trained, files, tmp_path) -> list[str]:
    return [a.format(ck=trained.checkpoint, files=files, tmp=tmp_path) for a in template]


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("psp: error:"), err
    assert "Traceback" not in err
    return lines[0]


def test_at_least_twenty_bad_inputs():
    """The issue asks for at least 20 distinct bad inputs."""
    assert len(BAD_INPUTS) >= 20


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_one_line_exit_2(case, trained, files, tmp_path, capsys):
    """Each bad input ends with exit code 2, exactly one 'psp: error:' line, no traceback, no output folder."""
    rc = main(_argv(BAD_INPUTS[case], trained, files, tmp_path))
    out, err = capsys.readouterr()
    assert rc == 2, (case, err)
    _one_error_line(err)
    assert not (tmp_path / "o").exists()
    torch.set_num_threads(1)


def _psp_command() -> list[str]:
    script = Path(sys.executable).parent / "psp"
    return [str(script)] if script.exists() else [sys.executable, "-m", "psp.cli"]


@pytest.mark.parametrize("case", ["truncated_checkpoint"])
def test_console_script_bad_input(case, trained, files, tmp_path):
    """The installed console script itself exits with 2 and prints one line (real process, real stderr)."""
    proc = subprocess.run(_psp_command() + _argv(BAD_INPUTS[case], trained, files, tmp_path), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    _one_error_line(proc.stderr)
    assert proc.stdout == ""


def test_a_pruning_run_imports_no_exporter_and_no_model_zoo(trained, tmp_path):
    """A `psp prune` that times no latency (every workflow job) neither exports nor builds a zoo model, so onnx (0.9
    s to import), onnxruntime, timm and torchvision's models stay unimported: each job paid them at start."""
    heavy = ("onnx", "onnxruntime", "timm", "torchvision.models")
    code = (f"import sys; from psp.cli import main; code = main(sys.argv[1:]); "
            f"print(*[m for m in {heavy!r} if m in sys.modules], file=sys.stderr); sys.exit(code)")
    argv = ["prune", "--method", "oneshot", "--checkpoint", str(trained.checkpoint), "--target-macs", "2",
            "--latency-repeats", "0", "--threads", "1", "--out", str(tmp_path / "o")]
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "o" / "metrics.json").is_file()
    assert proc.stderr.splitlines()[-1] == "", proc.stderr.splitlines()[-1]


def test_debug_shows_traceback(trained, files, tmp_path):
    """--debug re-raises the usage error (for developers) instead of the one-line message."""
    from psp.errors import UsageError

    with pytest.raises(UsageError):
        main(_argv(PRUNE + ["--ratio", "1.5", "--debug"], trained, files, tmp_path))


def test_list(capsys):
    """psp list names every registered model and the PSP methods and controls."""
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("resnet56", "vgg19_cifar", "resnet8_tiny"):
        assert name in out
    for method in ("psp", "psp_no_penalty", "psp_no_balance", "psp_no_rec", "oneshot", "oneshot_bn", "dense_bn"):
        assert f"method {method} " in out


# --- happy paths -------------------------------------------------------------------------------------------------


def _prune(trained, out: Path, method: str = "oneshot", extra: tuple[str, ...] = ()) -> int:
    rc = main(["prune", "--method", method, "--checkpoint", str(trained.checkpoint), "--target-macs", "2",
               "--samples", "64", "--seed", "0", "--out", str(out), "--threads", "1", *extra])
    torch.set_num_threads(1)
    return rc


@pytest.fixture(scope="module")
def pruned(trained, tmp_path_factory):
    """The issue's example: psp prune --method oneshot ... --target-macs 2 --samples 64 --seed 0 --out DIR."""
    out = tmp_path_factory.mktemp("pruned")
    assert _prune(trained, out) == 0
    return out


def test_prune_writes_results(pruned, trained):
    """prune writes model.pt and a metrics.json with every documented key and consistent values."""
    assert (pruned / "model.pt").is_file() and (pruned / "selection.json").is_file()
    metrics = json.loads((pruned / "metrics.json").read_text())
    assert set(metrics) >= METRIC_KEYS, METRIC_KEYS - set(metrics)
    assert (metrics["method"], metrics["model"], metrics["importance"], metrics["selection"], metrics["seed"]) == (
        "oneshot", "resnet8_tiny", "l2", "global", 0)
    assert metrics["macs_dense"] == trained.metrics["macs"]
    assert metrics["top1_dense"] == trained.metrics["top1"]
    assert metrics["macs_dense"] / metrics["macs"] == pytest.approx(2.0, rel=0.02)
    assert metrics["rf"] == pytest.approx(1 - metrics["macs"] / metrics["macs_dense"])
    assert metrics["rp"] == pytest.approx(1 - metrics["params"] / metrics["params_dense"])
    assert 0 < metrics["params"] < metrics["params_dense"]
    assert 0 <= metrics["top1"] <= 1
    assert all(metrics[k] > 0 for k in ("latency_b1", "latency_b64", "latency_b1_dense", "latency_b64_dense"))
    assert all(metrics[f"{k}_ort"] > 0 for k in ("latency_b1", "latency_b64", "speedup_b1", "speedup_b64"))
    assert metrics["speedup_b64_ort"] == metrics["latency_b64_ort_dense"] / metrics["latency_b64_ort"]
    assert {metrics["torch_format_b1"], metrics["torch_format_b64"]} <= {"contiguous", "channels_last"}
    assert 0 <= metrics["onnx_difference"] <= 1e-3
    assert metrics["seconds_total"] >= metrics["seconds"] >= 0
    assert metrics["calib_indices_file"] is None, "oneshot reads no calibration images"
    selection = json.loads((pruned / "selection.json").read_text())
    assert metrics["channels_removed"] == {k: len(v) for k, v in selection.items()}


def test_eval_reproduces_prune_metrics(pruned, capsys, tmp_path):
    """psp eval with only --checkpoint rebuilds the pruned model (data and normalisation from the file) and
    measures the same accuracy and MACs as prune did."""
    metrics = json.loads((pruned / "metrics.json").read_text())
    assert main(["eval", "--checkpoint", str(pruned / "model.pt")]) == 0
    torch.set_num_threads(1)
    out = capsys.readouterr().out
    printed = dict(item.split("=") for item in out.split())
    assert float(printed["top1"]) == pytest.approx(metrics["top1"], abs=5e-4)
    assert float(printed["macs"]) == pytest.approx(metrics["macs"], rel=1e-3)
    assert main(["eval", "--checkpoint", str(pruned / "model.pt"), "--out", str(tmp_path / "e.json"),
                 "--threads", "1"]) == 0
    again = json.loads((tmp_path / "e.json").read_text())
    assert (again["top1"], again["macs"], again["params"]) == (metrics["top1"], metrics["macs"], metrics["params"])
    assert again["model"] == "resnet8_tiny" and again["data"] == "mnist5k"


def test_same_seed_same_results(trained, tmp_path):
    """Two runs with the same seed give identical metrics.json (timings aside), calibration and weights."""
    runs = [tmp_path / "a", tmp_path / "b"]
    for out in runs:
        assert _prune(trained, out, "oneshot_bn", ("--importance", "random")) == 0
    a, b = (json.loads((out / "metrics.json").read_text()) for out in runs)

    def stable(m: dict) -> dict:
        return {k: v for k, v in m.items() if not any(t in k for t in VOLATILE) and k != "calib_indices_file"}

    assert stable(a) == stable(b)
    assert a["samples"] == 64 and Path(a["calib_indices_file"]) == runs[0] / "calib_indices.txt"
    indices = (runs[0] / "calib_indices.txt").read_text()
    assert indices == (runs[1] / "calib_indices.txt").read_text() and len(indices.split()) == 64
    wa, wb = (torch.load(out / "model.pt", weights_only=True)["state_dict"] for out in runs)
    assert all(torch.equal(v, wb[k]) for k, v in wa.items())
    # and another seed changes the random selection
    assert _prune(trained, tmp_path / "c", "oneshot_bn", ("--importance", "random", "--seed", "1")) == 0
    c = json.loads((tmp_path / "c" / "metrics.json").read_text())
    assert c["channels_removed"] != a["channels_removed"] or c["top1"] != a["top1"]
    assert (tmp_path / "c" / "calib_indices.txt").read_text() != indices


def test_dense_metrics_reused(pruned, trained, tmp_path):
    """--dense-metrics takes the unpruned accuracy from the base model's metrics.json (the workflow's sweep saves one
    evaluation of the base model per run) and changes nothing else; the value really comes from the file."""
    assert _prune(trained, tmp_path / "a", extra=("--dense-metrics", str(trained.dir / "metrics.json"))) == 0
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (tmp_path / "a", pruned))

    def stable(m: dict) -> dict:
        return {k: v for k, v in m.items() if not any(t in k for t in VOLATILE) and k != "dense_metrics_file"}

    assert stable(a) == stable(b)
    assert a["dense_metrics_file"] == str(trained.dir / "metrics.json") and b["dense_metrics_file"] is None
    edited = json.loads((trained.dir / "metrics.json").read_text()) | {"top1": 0.123}
    (tmp_path / "edited.json").write_text(json.dumps(edited))
    assert _prune(trained, tmp_path / "c", extra=("--dense-metrics", str(tmp_path / "edited.json"))) == 0
    assert json.loads((tmp_path / "c" / "metrics.json").read_text())["top1_dense"] == 0.123


def test_latency_repeats_0_skips_timing_only(pruned, trained, tmp_path):
    """--latency-repeats 0 (what the workflow passes: its measure_latency job times every model alone) leaves the
    latency keys null and every other metric as a timed run has it."""
    assert _prune(trained, tmp_path / "a", extra=("--latency-repeats", "0")) == 0
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (tmp_path / "a", pruned))
    timed = [k for k in a if k.startswith(("latency", "speedup"))]
    assert sorted(timed) == sorted(k for k in b if k.startswith(("latency", "speedup"))) and len(timed) == 12
    assert all(a[k] is None for k in timed) and all(b[k] > 0 for k in timed)
    for key in ("torch_format_b1", "torch_format_b64", "onnx_difference"):
        assert a[key] is None and b[key] is not None

    def stable(m: dict) -> dict:
        return {k: v for k, v in m.items() if not any(t in k for t in VOLATILE) and k != "onnx_difference"}

    assert stable(a) == stable(b)


def test_calib_indices_file_is_used(trained, tmp_path):
    """--calib-indices replaces the seeded draw with exactly the listed images."""
    (tmp_path / "idx.txt").write_text("3\n1\n4\n1\n5\n")
    rc = main(["prune", "--method", "oneshot_bn", "--checkpoint", str(trained.checkpoint), "--ratio", "0.3",
               "--calib-indices", str(tmp_path / "idx.txt"), "--out", str(tmp_path / "o"), "--threads", "1"])
    torch.set_num_threads(1)
    assert rc == 0
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert metrics["samples"] == 5
    assert (tmp_path / "o" / "calib_indices.txt").read_text().split() == ["3", "1", "4", "1", "5"]


def test_train_command(tmp_path):
    """psp train writes a loadable model.pt and metrics.json (zero epochs keeps it fast)."""
    rc = main(["train", "--model", "vgg_tiny", "--data", "mnist5k", "--epochs", "0", "--out", str(tmp_path),
               "--threads", "1"])
    torch.set_num_threads(1)
    assert rc == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["model"] == "vgg_tiny" and metrics["epochs"] == 0 and metrics["normalize"] == "mnist"
    assert metrics["image_size"] == metrics["image_size_native"] == 28
    from psp.checkpoint import load_model

    loaded = load_model(tmp_path / "model.pt")
    assert loaded.name == "vgg_tiny" and loaded.data_arg == "mnist5k"
    buffer = io.BytesIO((tmp_path / "model.pt").read_bytes())
    assert torch.load(buffer, weights_only=True)["format"].startswith("psp-bench/model/")
