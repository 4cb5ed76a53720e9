"""Folded channels-last BatchNorm: train-mode BatchNorm's output, gradients and running statistics (compared with
ATen's in double precision, where only the order of sums differs), used only where it applies and undone after."""

import copy

import pytest
import torch
from torch import nn

from psp.reconstruct.folded_batchnorm import fold, foldable, folded_batchnorms

CL = torch.channels_last
CPU = torch.device("cpu")


def _pair(channels: int, **kwargs) -> tuple[nn.BatchNorm2d, nn.BatchNorm2d]:
    bn = nn.BatchNorm2d(channels, **kwargs).double()
    if bn.affine:
        with torch.no_grad():
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.normal_()
    return bn, copy.deepcopy(bn)


def _step(bn: nn.Module, x: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, ...]:
    x = x.detach().clone().requires_grad_()
    y = bn(x)
    y.backward(g)
    grads = tuple(p.grad.clone() for p in bn.parameters())
    return y.detach(), x.grad, *grads


@pytest.mark.parametrize("channels,size,kwargs", [
    (9, 6, {}), (7, 5, {"momentum": None}), (24, 4, {}), (10, 3, {"affine": False}),
    (5, 4, {"track_running_stats": False})])
def test_folded_batchnorm_is_train_mode_batchnorm(channels, size, kwargs):
    torch.manual_seed(channels)
    native, folded = _pair(channels, **kwargs)
    x = (torch.randn(16, channels, size, size, dtype=torch.float64) * 3 + 2).contiguous(memory_format=CL)
    g = torch.randn_like(x)
    with folded_batchnorms(nn.Sequential(folded), "channels_last", CPU) as names:
        assert names == ["0"]
        for _ in range(2):  # twice: the running statistics' update builds on the last one
            expected, got = _step(native, x, g), _step(folded, x, g)
            for e, o in zip(expected, got, strict=True):
                torch.testing.assert_close(o, e, rtol=1e-10, atol=1e-10)
            assert got[0].is_contiguous(memory_format=CL) and got[1].is_contiguous(memory_format=CL)
    for name, buffer in native.named_buffers():
        torch.testing.assert_close(dict(folded.named_buffers())[name], buffer, rtol=1e-12, atol=1e-12)
    assert "forward" not in vars(folded)


def test_float32_folded_batchnorm_matches_atens_within_float_rounding():
    torch.manual_seed(1)
    native, folded = (bn.float() for bn in _pair(11))
    x = (torch.randn(32, 11, 8, 8) * 2 + 1).contiguous(memory_format=CL)
    g = torch.randn_like(x)
    expected = _step(native, x, g)
    with folded_batchnorms(nn.Sequential(folded), "channels_last", CPU):
        got = _step(folded, x, g)
    for e, o in zip(expected, got, strict=True):
        torch.testing.assert_close(o, e, rtol=1e-4, atol=1e-4)


def test_folding_applies_only_to_channels_last_cpu_training_of_unblocked_widths():
    assert fold(9) == 16 and fold(24) == 2 and fold(8) == 2
    cl = torch.randn(4, 9, 4, 4).contiguous(memory_format=CL)
    assert foldable(cl)
    assert not foldable(torch.randn(4, 9, 4, 4))  # NCHW
    assert not foldable(torch.randn(4, 16, 4, 4).contiguous(memory_format=CL))  # ATen's kernel is fast there
    assert not foldable(torch.randn(3, 9, 1, 1).contiguous(memory_format=CL))  # 1×1: the same memory as NCHW
    assert not foldable(cl.half())
    model = nn.Sequential(nn.BatchNorm2d(9), nn.BatchNorm2d(16), nn.SyncBatchNorm(9))
    with folded_batchnorms(model, "contiguous", CPU) as names:
        assert names == []
    with folded_batchnorms(model, "channels_last", torch.device("cuda")) as names:
        assert names == []  # no GPU needed: nothing is run
    with folded_batchnorms(model, "channels_last", CPU) as names:
        assert names == ["0"]  # not a multiple of 16, and a plain BatchNorm2d (subclasses keep their forward)
        bn = model[0].eval()  # eval mode: running statistics, the module's own forward, bit for bit
        assert torch.equal(bn(cl), nn.BatchNorm2d.forward(bn, cl))
        nchw = torch.randn(4, 9, 4, 4)
        bn.train()
        reference = copy.deepcopy(bn)
        assert torch.equal(bn(nchw), nn.BatchNorm2d.forward(reference, nchw))
    assert not any("forward" in vars(m) for m in model.modules())


def test_rows_that_do_not_fold_evenly_take_the_module_forward():
    bn = nn.BatchNorm2d(9)  # fold 16: 3 × 1 × 5 = 15 rows do not split into groups of 16
    x = torch.randn(3, 9, 1, 5).contiguous(memory_format=CL)
    assert not foldable(x)
    reference = copy.deepcopy(bn)
    with folded_batchnorms(nn.Sequential(bn), "channels_last", CPU):
        assert torch.equal(bn(x), reference(x))
