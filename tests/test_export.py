"""ONNX export and latency as deployed: every registered CIFAR model, dense and pruned, round-trips through ONNX
Runtime within the stated tolerance; ``psp export`` writes a checked file or nothing; one export per architecture
serves every model of it with its own weights; the latency pair reports both runtimes."""

import copy
import json

import numpy as np
import onnx
import pytest
import torch

from psp.checkpoint import save_model
from psp.cli import EXIT_USAGE, main
from psp.data.spec import DataSpec
from psp.export import (
    TOLERANCE,
    ArchitectureExports,
    ExportFailed,
    check_export,
    export_onnx,
    onnx_difference,
    ort_session,
)
from psp.latency import time_pair
from psp.models import list_models
from psp.structure.groups import channel_groups
from psp.structure.importance import score_groups
from psp.structure.removal import remove_channels
from psp.structure.selection import select_by_ratio

pytestmark = pytest.mark.timeout(600)

CIFAR = DataSpec("cifar10", 3, 32, 10)


def pruned_copy(model: torch.nn.Module, x: torch.Tensor, seed: int = 0) -> torch.nn.Module:
    """``model`` with half of its channels removed at random: irregular widths and edited shortcut maps."""
    selection = select_by_ratio(score_groups(channel_groups(model, x), "random", seed), 0.5)
    return remove_channels(copy.deepcopy(model), selection, x).eval()


@pytest.mark.slow
@pytest.mark.parametrize("name", list_models())
def test_export_round_trips_dense_and_pruned(name, random_model):
    """ONNX Runtime computes what PyTorch computes, within TOLERANCE, for the dense and a pruned model of every
    registered architecture at its tiny width (the graph, not the width, is tested), at the batch
    exported (2) and at others (the batch dimension is dynamic)."""
    dense, x = random_model(name)
    for model in (dense, pruned_copy(dense, x)):
        onnx_bytes = export_onnx(model, x)
        assert check_export(model, onnx_bytes, x) <= TOLERANCE
        session = ort_session(onnx_bytes, 1)
        for batch in (1, 5):
            with torch.no_grad():
                expected = model(x[:1].expand(batch, -1, -1, -1)).numpy()
            got = session.run(None, {"input": x[:1].expand(batch, -1, -1, -1).contiguous().numpy()})[0]
            assert np.abs(got - expected).max() <= TOLERANCE * max(1.0, np.abs(expected).max())


def test_a_wrong_graph_fails_the_check(random_model):
    """The check is not vacuous: the file of one model checked against another model's weights is refused."""
    model, x = random_model("vgg_tiny")
    other, _ = random_model("vgg_tiny", seed=1)
    onnx_bytes = export_onnx(model, x)
    with pytest.raises(ExportFailed, match="differ from PyTorch's"):
        check_export(other, onnx_bytes, x)


def test_unexportable_model_is_a_one_line_failure():
    class SingularValues(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.linalg.svdvals(x)  # no ONNX operator computes it

    with pytest.raises(ExportFailed, match="SingularValues cannot be exported to ONNX: .*svdvals") as info:
        export_onnx(SingularValues(), torch.zeros(1, 3, 8, 8))
    assert "\n" not in str(info.value)


def test_architecture_exports_once_and_reweights(random_model):
    """Two models of one architecture share one export, each session computing its own model's outputs; another
    architecture is exported anew."""
    first, x = random_model("resnet8_tiny", seed=0)
    second, _ = random_model("resnet8_tiny", seed=1)
    exports = ArchitectureExports()
    sessions = [ort_session(exports(m, x), 1) for m in (first, second)]
    assert exports.exports == 1
    for model, session in zip((first, second), sessions, strict=True):
        assert onnx_difference(model, session, x) <= TOLERANCE
    assert onnx_difference(first, sessions[1], x) > 100 * TOLERANCE, "the second session has the second's weights"
    exports(pruned_copy(first, x), x)
    assert exports.exports == 2


def test_time_pair_reports_both_runtimes(random_model):
    dense, x = random_model("vgg_tiny")
    pruned = pruned_copy(dense, x)
    timed = time_pair(dense, pruned, x, ArchitectureExports(), repeats=1, batches=(1, 4))
    for b in (1, 4):
        for runtime in ("", "_ort"):
            assert timed[f"latency_b{b}{runtime}"] > 0 and timed[f"latency_b{b}{runtime}_dense"] > 0
            assert timed[f"speedup_b{b}{runtime}"] == pytest.approx(
                timed[f"latency_b{b}{runtime}_dense"] / timed[f"latency_b{b}{runtime}"])
        assert timed[f"torch_format_b{b}"] in ("contiguous", "channels_last")
    assert timed["onnx_difference"] <= TOLERANCE and timed["onnx_difference_dense"] <= TOLERANCE


@pytest.fixture(scope="module")
def own_checkpoint(tmp_path_factory, random_model):
    """A pruned vgg_tiny saved as the suite's own model.pt (it records its data spec: nothing else is needed)."""
    dense, x = random_model("vgg_tiny")
    path = tmp_path_factory.mktemp("own") / "model.pt"
    model = pruned_copy(dense, x)
    save_model(path, model, "vgg_tiny", CIFAR, "cifar10", {}, "cifar10")
    return path, model, x


def test_cli_export_writes_a_checked_file(own_checkpoint, tmp_path, capsys):
    path, model, x = own_checkpoint
    out = tmp_path / "deploy" / "model.onnx"
    assert main(["export", "--checkpoint", str(path), "--onnx", str(out), "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and f"tolerance {TOLERANCE:g}" in printed
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert props["psp_bench.model"] == "vgg_tiny" and props["psp_bench.normalize"] == "cifar10"
    assert json.loads(props["psp_bench.data"])["image_size"] == 32
    assert onnx_difference(model, ort_session(out.read_bytes(), 1), x) <= TOLERANCE
    assert [p.name for p in out.parent.iterdir()] == ["model.onnx"], "no temporary file is left behind"


@pytest.mark.parametrize(("case", "message"), [
    ("directory", "is a directory"),
    ("missing", "does not exist"),
    ("foreign", "pass --model NAME and --data SPEC"),
])
def test_cli_export_errors_are_one_line(own_checkpoint, tmp_path, capsys, case, message):
    path, model, _ = own_checkpoint
    onnx_path = tmp_path / "model.onnx"
    if case == "directory":
        onnx_path = tmp_path
    elif case == "missing":
        path = tmp_path / "nothing.pt"
    else:
        path = tmp_path / "foreign.pt"
        torch.save(model.state_dict(), path)
    assert main(["export", "--checkpoint", str(path), "--onnx", str(onnx_path)]) == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not (tmp_path / "model.onnx").exists()
