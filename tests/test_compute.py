"""The compute a method executes is counted as it runs: checked against a hand count and against PyTorch's own
counter (a dispatch mode that sees every operator) on a whole run; on real runs it grows by the same amount with every
epoch, and a method that trains spends more than one that does not."""

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from psp import pipeline
from psp.compute import FlopCount
from psp.methods import get_method
from psp.settings import PruneSettings

OPTS = pipeline.RunOptions(threads=1, device="cpu", latency_repeats=0)


def test_the_count_matches_a_hand_count_forward_and_backward():
    conv, linear = nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.Linear(8, 5)
    x = torch.randn(4, 3, 6, 6)
    conv_macs = 4 * 8 * 6 * 6 * (3 * 3 * 3)  # outputs x (input channels x kernel)
    linear_macs = 4 * 8 * 5
    with FlopCount() as forward, torch.no_grad():
        linear(conv(x).mean((2, 3)))
    assert forward.total == 2 * (conv_macs + linear_macs)
    with FlopCount() as both:
        linear(conv(x).mean((2, 3))).sum().backward()
    # Backward: the conv's weight gradient only (its input needs none), the linear layer's weight and input gradients.
    assert both.by_pass["backward"] == 2 * conv_macs + 2 * 2 * linear_macs
    with FlopCount() as unused:
        linear(conv(x).mean((2, 3)))  # a graph recorded but never run backward: forward only
    assert unused.total == forward.total


def test_nothing_is_counted_outside_the_context():
    count = FlopCount()
    with count:
        nn.Linear(4, 4)(torch.ones(2, 4))
    nn.Linear(4, 4)(torch.ones(2, 4))
    assert count.total == 2 * 2 * 4 * 4


@pytest.mark.parametrize("method", ["psp", "gap"])
def test_a_whole_method_counts_what_pytorch_counts(trained, make_context, fresh_base, method):
    """Every convolution and matrix product a method runs (forward, backward, target passes, tracing) counted by
    layer hooks equals PyTorch's operator-level count of the same run."""
    def run(counter) -> int:
        ctx = make_context(fresh_base(), penalty_epochs=1, rec_epochs=1, layer_epochs=1, samples=32,
                           target_macs=2.0)
        with counter:
            get_method(method).run(ctx)
        return counter

    ours = run(FlopCount()).total
    theirs = run(FlopCounterMode(display=False)).get_total_flops()
    assert ours == theirs > 0


@pytest.mark.timeout(300)
def test_a_run_records_the_compute_it_spent_growing_with_each_epoch(trained, tmp_path):
    def flops(method: str, **settings: object) -> int:
        s = PruneSettings(target_macs=2.0, samples=32, penalty_epochs=0, **settings)
        metrics = pipeline.prune_run(method, str(trained.checkpoint), None, None, None, s,
                                     tmp_path / f"{method}{len(list(tmp_path.iterdir()))}", OPTS)
        return metrics["method_flops"]

    one, two, three = (flops("psp", rec_epochs=e) for e in (1, 2, 3))
    assert 0 < one < two < three
    assert three - two == two - one  # every epoch executes the same operators on the same shapes
    assert flops("oneshot") < one
    s = PruneSettings(target_macs=2.0, samples=32)
    off = pipeline.prune_run("oneshot", str(trained.checkpoint), None, None, None, s, tmp_path / "off",
                             pipeline.RunOptions(threads=1, device="cpu", latency_repeats=0, count_flops=False))
    assert off["method_flops"] is None
