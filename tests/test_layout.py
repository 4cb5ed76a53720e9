"""PSP's channels-last path: the layout helpers keep the layout and the values, the loss's gradient is mse_loss's bit
for bit in the output's layout, the target store caches, gathers and restricts in the layout it was given, and a PSP
run records its layouts (phase 2's resolved again for the pruned model), hands back an NCHW model, leaves the caller's
model NCHW and matches an NCHW run's phase 1."""

import math

import pytest
import torch
from torch.nn import functional as F

from psp.errors import UsageError
from psp.methods import get_method
from psp.models.resnet_cifar_a import CifarResNetA
from psp.reconstruct import layout
from psp.reconstruct.loss import HolisticLoss, layer_term
from psp.reconstruct.taps import LayerTaps, reconstruction_layers
from psp.reconstruct.targets import TargetStore

CL = torch.channels_last
CHEAP = {"target_macs": 2.0, "samples": 64, "batch_size": 32, "lr": 1e-2, "penalty_epochs": 2, "rec_epochs": 2}


def _cl(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous(memory_format=CL)


def test_auto_is_channels_last_on_cpu_for_widths_in_blocks_of_16_only():
    wide, narrow = CifarResNetA(20), CifarResNetA(8, width=8)  # 16-64 channels; 8-32 (resnet8_tiny's)
    cpu = torch.device("cpu")
    assert layout.resolve_memory_format("auto", cpu, wide) == "channels_last"
    assert layout.resolve_memory_format("auto", cpu, narrow) == "contiguous"
    assert layout.resolve_memory_format("auto", cpu, CifarResNetA(8, width=24)) == "contiguous"  # 24-96: unblocked
    assert layout.resolve_memory_format("auto", cpu, torch.nn.Linear(4, 2)) == "contiguous"
    assert layout.resolve_memory_format("auto", torch.device("cuda"), wide) == "contiguous"
    assert layout.resolve_memory_format("channels_last", cpu, narrow) == "channels_last"
    with pytest.raises(UsageError, match="nhwc"):
        layout.resolve_memory_format("nhwc", cpu, wide)


@pytest.mark.parametrize("dim", [0, 1])
def test_index_select_keeps_layout_and_values(dim):
    t = torch.randn(6, 5, 4, 3)
    index = torch.tensor([4, 0, 2])
    expected = t.index_select(dim, index)
    got = layout.index_select(_cl(t), dim, index)
    assert layout.is_channels_last(got) and torch.equal(got, expected)
    assert torch.equal(layout.index_select(t, dim, index), expected)  # NCHW: the built-in, unchanged


def test_index_select_into_rows_made_like_the_source():
    t = _cl(torch.randn(6, 5, 4, 3))
    out = layout.empty_rows(t, 8)[:3]
    got = layout.index_select(t, 0, torch.tensor([5, 1, 3]), out=out)
    assert got.data_ptr() == out.data_ptr() and layout.is_channels_last(got)
    assert torch.equal(got, t[[5, 1, 3]])
    assert not layout.is_channels_last(layout.empty_rows(torch.randn(6, 5, 4, 3), 2))
    assert not layout.is_channels_last(torch.randn(2, 5, 1, 1).contiguous(memory_format=CL))  # same memory as NCHW


@pytest.mark.parametrize("fmt", ["contiguous", "channels_last"])
def test_layer_term_gradient_is_mse_loss_bit_for_bit_in_the_output_layout(fmt):
    x = layout.to_layout(torch.randn(8, 5, 6, 6) * 3, fmt).requires_grad_()
    target = layout.to_layout(torch.randn(8, 5, 6, 6), fmt)
    denominator = torch.tensor(7.3)
    out = x * 1.0  # a layer's output: not a leaf
    term = layer_term(out, target.clone(), denominator)  # it overwrites the target it is given
    (grad,) = torch.autograd.grad(term, x)
    (reference,) = torch.autograd.grad(F.mse_loss(x, target, reduction="sum") / denominator, x)
    assert term.item() == pytest.approx((x.double() - target.double()).pow(2).sum().item() / 7.3, rel=1e-6)
    assert torch.equal(grad, reference)
    assert layout.is_channels_last(grad) == (fmt == "channels_last")


def test_layer_term_adds_its_gradient_to_the_later_layers_and_allows_in_place_consumers():
    """The term's node joins the output's history: what later layers send back, plus the term's own gradient, in one
    pass; the output stays the same tensor, which a consumer may change in place (nn.ReLU(inplace=True))."""
    torch.manual_seed(0)
    x = torch.randn(4, 3, 5, 5, requires_grad=True)
    target, denominator = torch.randn(4, 3, 5, 5), torch.tensor(2.5)
    out = x * 2.0
    same = out
    term = layer_term(out, target.clone(), denominator)
    assert out is same
    after = torch.relu_(out).sum()  # in place, after the term: allowed
    (grad,) = torch.autograd.grad(term + after, x)
    reference_out = x * 2.0
    reference = F.mse_loss(reference_out, target, reduction="sum") / denominator + torch.relu(reference_out).sum()
    (expected,) = torch.autograd.grad(reference, x)
    torch.testing.assert_close(grad, expected, rtol=1e-6, atol=1e-6)
    # A term left out of the loss (its layer ran again) only passes the later layers' gradient on.
    out = x * 2.0
    layer_term(out, target.clone(), denominator)
    (grad,) = torch.autograd.grad(out.sum(), x)
    assert torch.equal(grad, torch.full_like(x, 2.0))


def test_holistic_loss_in_hooks_equals_a_loss_over_collected_outputs(fresh_base, make_context):
    """Terms made as each output appears give the gradients of the whole loss written over collected outputs."""
    original = fresh_base()
    images = make_context(original, samples=24, target_macs=2.0).calibration()
    layers = reconstruction_layers(original)
    store, reference_store = (TargetStore(original, images, layers, 2**40, batch_size=8) for _ in range(2))
    idx = torch.tensor([5, 17, 2, 9, 11, 0, 23, 4])
    models = [fresh_base().train(), fresh_base().train()]
    with HolisticLoss(models[0], layers, store.batch(idx)) as terms:
        models[0](images[idx])
    loss = terms.total()
    with LayerTaps(models[1], layers) as taps:
        models[1](images[idx])
    batch = reference_store.batch(idx)
    reference = sum(F.mse_loss(taps.outputs[n], t, reduction="sum") / d.clamp_min(1e-12)
                    for n in layers for t, d in [batch.take(n)])
    assert loss.item() == pytest.approx(reference.item(), rel=1e-5)
    loss.backward()
    reference.backward()
    # Equal up to float rounding on the gradient's own scale: each term's gradient is added to the later layers' in
    # one fused pass (rounded once), and an element where terms cancel keeps only the rounding (1.8e-7 of 1e-3 seen
    # with AVX2 kernels).
    for p, q in zip(models[0].parameters(), models[1].parameters(), strict=True):
        assert (p.grad - q.grad).abs().max() <= 1e-5 * q.grad.abs().max()


def test_layer_term_backward_runs_once():
    out = torch.randn(4, 3, requires_grad=True) * 1.0
    term = layer_term(out, torch.zeros(4, 3), torch.tensor(1.0))
    term.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="retain_graph"):
        term.backward()


def test_store_caches_gathers_and_restricts_in_its_layout(fresh_base, make_context):
    original = fresh_base()
    images = make_context(original, samples=40, target_macs=2.0).calibration()
    layers = reconstruction_layers(original)
    plain = TargetStore(original, images, layers, 2**40, batch_size=16)
    laid = layout.to_memory_format(fresh_base(), "channels_last")
    store = TargetStore(laid, layout.to_layout(images, "channels_last"), layers, 2**40, batch_size=16)
    four_d = [n for n in layers if store.cached[n].dim() == 4 and store.cached[n].shape[2] > 1]
    assert four_d and all(layout.is_channels_last(store.cached[n]) for n in four_d)
    idx = torch.tensor([39, 2, 17, 5])
    batch, expected_batch = store.batch(idx), plain.batch(idx)
    targets = {}
    for n in layers:  # the same model in another layout: equal up to the kernels' summation order
        (targets[n], denominator), (expected, expected_denominator) = batch.take(n), expected_batch.take(n)
        torch.testing.assert_close(targets[n], expected, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(denominator, expected_denominator, rtol=1e-4, atol=1e-5)
    assert all(layout.is_channels_last(targets[n]) for n in four_d)
    keep = {n: torch.arange(0, store.cached[n].shape[1], 2) for n in four_d}
    restricted, nchw = store.restrict(keep), store.restrict(keep, "contiguous")
    for n in four_d:
        assert layout.is_channels_last(restricted.cached[n])
        assert torch.equal(restricted.cached[n], store.cached[n].index_select(1, keep[n]))
        assert nchw.cached[n].is_contiguous() and torch.equal(nchw.cached[n], restricted.cached[n])
    assert torch.allclose(nchw.sqnorms[four_d[0]], restricted.sqnorms[four_d[0]], rtol=1e-5)  # another sum order


def test_uncached_store_hands_targets_out_in_its_layout(fresh_base, make_context):
    laid = layout.to_memory_format(fresh_base(), "channels_last")
    images = layout.to_layout(make_context(fresh_base(), samples=8, target_macs=2.0).calibration(), "channels_last")
    layers = reconstruction_layers(laid)
    store = TargetStore(laid, images, layers, cache_bytes=0, batch_size=4, fmt="contiguous")
    assert store.cached is None
    batch = store.batch(torch.tensor([3, 1]))
    assert all(batch.take(n)[0].is_contiguous() for n in layers)


def _run(ctx):
    torch.manual_seed(ctx.settings.seed)  # as the pipeline does
    return get_method("psp").run(ctx)


def test_psp_runs_channels_last_and_hands_back_nchw(fresh_base, make_context):
    caller = fresh_base()
    # A small rate: Adam turns a gradient that differs in its last bits into a step of a full rate either way.
    fast = _run(make_context(caller, **CHEAP | {"lr": 1e-4, "memory_format": "channels_last"}))
    nchw = _run(make_context(fresh_base(), **CHEAP | {"lr": 1e-4, "memory_format": "contiguous"}))
    assert fast.extra["memory_format"] == "channels_last" and nchw.extra["memory_format"] == "contiguous"
    assert nchw.extra["conv_input_grad"] == nchw.extra["rec_conv_input_grad"] == "forward"  # NCHW on CPU
    for model in (caller, fast.model):
        assert all(p.is_contiguous() for p in model.parameters())
    # Phase 1, before re-selection: the same training up to the kernels' summation order (phase 2 may differ where
    # two channels' norms tie within it, so it is not compared).
    phase1 = [[r["loss"] for r in x.tables["losses"] if r["phase"] == 1] for x in (fast, nchw)]
    assert len(phase1[0]) == CHEAP["penalty_epochs"]
    assert phase1[0] == pytest.approx(phase1[1], rel=1e-3)


def test_auto_keeps_phase_1s_layout_in_phase_2_with_folded_batchnorms(make_context):
    torch.manual_seed(0)
    blocked = CifarResNetA(8, in_channels=1, width=16).eval()  # 16-64 channels: phase 1 channels-last
    result = _run(make_context(blocked, **CHEAP))
    # Pruned to about half the MACs, its widths are no longer multiples of 16: phase 2 still runs channels-last, its
    # BatchNorms folded (psp.reconstruct.folded_batchnorm), its convolutions' input gradients oneDNN's own.
    assert result.extra["memory_format"] == result.extra["rec_memory_format"] == "channels_last"
    assert result.extra["folded_batchnorms"] == 0 and result.extra["rec_folded_batchnorms"] > 0
    assert result.extra["conv_input_grad"] == result.extra["rec_conv_input_grad"] == "native"
    assert all(p.is_contiguous() for p in result.model.parameters())
    assert all(math.isfinite(r["loss"]) for r in result.tables["losses"])
    assert not any("forward" in vars(m) for m in result.model.modules())  # the folding is undone


def test_select_channels_keeps_layout_and_values_and_falls_back_on_non_finite_values():
    t = _cl(torch.randn(4, 12, 3, 5))
    keep = torch.tensor([0, 3, 4, 9, 11])
    got = layout.select_channels(t, keep)
    assert layout.is_channels_last(got) and torch.equal(got, t.index_select(1, keep))
    t[1, 5, 2, 2] = float("inf")  # a dropped channel: the product would spread NaN over its row
    assert torch.equal(layout.select_channels(t, keep), t.index_select(1, keep))
    t[2, 3, 0, 0] = float("nan")  # a kept one
    torch.testing.assert_close(layout.select_channels(t, keep), t.index_select(1, keep), equal_nan=True)
    plain = torch.randn(4, 12, 3, 5)
    assert torch.equal(layout.select_channels(plain, keep), plain.index_select(1, keep))
