"""Pruning targets of both kinds: the spelling a config and a path use, and what a run records. A MACs target's run
records the channel fraction it removed; a ratio run records the ratio and the MACs reduction it gave, global or
uniform; a ratio that would empty a layer is refused before the method does any work."""

import pytest
import torch

from psp import pipeline, registry
from psp.checkpoint import save_model
from psp.data.spec import DataSpec
from psp.errors import UsageError
from psp.models import create_model
from psp.pruning_target import PruningTarget, target_text
from psp.settings import PruneSettings

pytestmark = pytest.mark.timeout(180)

OPTS = pipeline.RunOptions(threads=1, device="cpu", latency_repeats=0)


@pytest.mark.parametrize(("entry", "kind", "value", "label", "flags", "text"), [
    (2, "macs", 2.0, "2.0", "--target-macs 2.0", "2×"),
    ("2.14", "macs", 2.14, "2.14", "--target-macs 2.14", "2.14×"),
    ("r0.5", "ratio", 0.5, "r0.5", "--ratio 0.5", "ratio 0.5"),
    ("r.25", "ratio", 0.25, "r0.25", "--ratio 0.25", "ratio 0.25"),
])
def test_a_target_is_spelled_one_way_everywhere(entry, kind, value, label, flags, text):
    target = PruningTarget.parse(entry)
    assert (target.kind, target.value, target.label, target.flags, target.text) == (kind, value, label, flags, text)
    assert PruningTarget.parse(target.label) == target  # the path label parses back
    assert PruningTarget.of_value(value) == target and target_text(value) == text  # runs.csv's number tells the kind


@pytest.mark.parametrize("entry", [1, 1.0, 0.5, "r1.5", "r0", "r", "x2", "2x", True, "nan", "inf", -3])
def test_a_malformed_target_is_refused_naming_it(entry):
    with pytest.raises(UsageError, match=r"^target .* is not a MACs reduction above 1 .* or a global channel ratio"):
        PruningTarget.parse(entry)


def _prune(trained, tmp_path, **settings: object) -> dict:
    return pipeline.prune_run("oneshot", str(trained.checkpoint), None, None, None,
                              PruneSettings(samples=32, **settings), tmp_path, OPTS)


@pytest.mark.parametrize("selection", ["global", "uniform"])
def test_a_ratio_run_records_the_ratio_and_the_reduction_it_gave(trained, tmp_path, selection):
    metrics = _prune(trained, tmp_path, ratio=0.3, selection=selection)
    assert metrics["ratio"] == 0.3 and metrics["target_macs"] is None and metrics["selection"] == selection
    assert metrics["macs_reduction"] > 1.05
    assert metrics["channels_removed_fraction"] == pytest.approx(0.3, abs=0.05)  # units round it a little


def test_a_macs_run_records_the_channel_fraction_it_removed(trained, tmp_path):
    metrics = _prune(trained, tmp_path, target_macs=2.0)
    assert metrics["target_macs"] == 2.0 and metrics["ratio"] is None
    assert metrics["macs_reduction"] == pytest.approx(2.0, rel=0.02)
    removed = sum(metrics["channels_removed"].values())
    assert 0 < metrics["channels_removed_fraction"] < 1 and removed > 0


def test_a_ratio_that_empties_a_layer_is_refused_before_any_work(tmp_path, monkeypatch):
    """ShuffleNet's pass-through tensor can lose every channel by ratio while each group keeps some: the run stops in
    one line naming the layer before the method is called (a retraining method would have trained first)."""
    spec = DataSpec("mnist5k", 1, 28, 10)
    torch.manual_seed(0)
    model = create_model("tv:shufflenet_v2_x0_5", spec).eval()
    checkpoint = tmp_path / "shufflenet.pt"
    save_model(checkpoint, model, "tv:shufflenet_v2_x0_5", spec, "mnist", data_arg="mnist5k")
    ran, refused = [], {}

    def record(ctx):
        ran.append(ctx.settings.ratio)
        raise RuntimeError("the method ran")

    monkeypatch.setattr(registry, "_methods", dict(registry._methods))  # the test's method leaves with the test
    registry.register_method("test_records_its_call", uses="none", family="control")(record)
    for ratio in (0.7, 0.8, 0.9):
        try:
            pipeline.prune_run("test_records_its_call", str(checkpoint), None, None, None,
                               PruneSettings(ratio=ratio), tmp_path / f"r{ratio}", OPTS)
        except UsageError as e:
            refused[ratio] = str(e)
        except RuntimeError:
            pass
    assert refused, "some global ratio empties a ShuffleNet layer"
    assert all("would remove every channel of layer" in r and "\n" not in r for r in refused.values())
    assert not set(ran) & set(refused)  # the method was never called where the ratio was refused
    assert not any((tmp_path / f"r{ratio}").exists() for ratio in refused)  # nothing half-written
