"""A method's context has one constructor, ``PruneContext.build``: it places the model and the example input on the
device, decodes calibration images when the method's ``uses`` says so, and nobody else builds a context by hand."""

import re
from pathlib import Path

import pytest

from psp.emulation.device import DEVICE, EmulatedCuda
from psp.methods import PruneContext
from psp.models import create_model
from psp.settings import PruneSettings

ROOT = Path(__file__).resolve().parents[1]
INDICES = [3, 1, 4, 1, 5]


class Draw:
    """Indices handed out on request, counting the requests (a draw the context must make lazily)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> list[int]:
        self.calls += 1
        return INDICES


def test_model_and_example_go_to_the_device_images_stay_on_the_host(mnist):
    with EmulatedCuda():
        model = create_model("resnet8_tiny", mnist.spec)
        ctx = PruneContext.build(model, mnist, PruneSettings(), normalize="mnist", indices=INDICES, device="cuda")
        assert ctx.device.type == "cuda" and ctx.model is model and not ctx.model.training
        assert {p.device for p in ctx.model.parameters()} == {DEVICE}
        assert ctx.example.device == DEVICE and ctx.example.shape == (1, 1, 28, 28)
        images = ctx.calibration()
        assert images.device.type == "cpu" and images.shape == (len(INDICES), 1, 28, 28)  # each method moves them


def test_calibration_images_are_decoded_at_once_and_once(mnist):
    """A calibration method's images are decoded before its timed run, and every call returns the same tensor."""
    draw = Draw()
    ctx = PruneContext.build(create_model("vgg_tiny", mnist.spec), mnist, PruneSettings(), normalize="mnist",
                             indices=draw)
    assert draw.calls == 1 and ctx.data is None and ctx.calibration_labels is None
    assert ctx.calibration() is ctx.calibration() and draw.calls == 1


def test_labels_methods_draw_only_when_they_ask(mnist):
    draw = Draw()
    ctx = PruneContext.build(create_model("vgg_tiny", mnist.spec), mnist, PruneSettings(), normalize="mnist",
                             indices=draw, uses="labels")
    assert draw.calls == 0 and ctx.data is mnist
    assert ctx.calibration_labels().tolist() == [mnist.train.label(i) for i in INDICES]
    assert ctx.calibration().shape[0] == len(INDICES) and draw.calls == 2


def test_a_method_that_reads_nothing_gets_nothing(mnist):
    """Given only the data's spec, as a method that reads no data needs."""
    draw = Draw()
    ctx = PruneContext.build(create_model("vgg_tiny", mnist.spec), mnist.spec, PruneSettings(), normalize="none",
                             indices=draw, uses="none")
    assert ctx.data is None and ctx.calibration_labels is None
    with pytest.raises(RuntimeError, match="uses='none'"):
        ctx.calibration()
    assert draw.calls == 0


def test_only_the_constructor_builds_a_context():
    """Every caller (pipeline, tests, benchmarks) goes through ``PruneContext.build``."""
    by_hand = re.compile(r"\bPruneContext\(")
    found = [f"{path.relative_to(ROOT)}:{number}"
             for folder in ("psp", "baselines", "tests", "benchmarks") for path in sorted((ROOT / folder).rglob("*.py"))
             if path != ROOT / "psp" / "methods.py"
             for number, line in enumerate(path.read_text().splitlines(), 1) if by_hand.search(line)]
    assert not found, found
