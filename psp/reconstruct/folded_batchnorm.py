"""Train-mode BatchNorm of a channels-last tensor whose width is not a multiple of 16, folded into one that is.

ATen's channels-last BatchNorm runs its per-channel loops in vectors of 16 floats (AVX-512) and falls back to
scalar code for the rest, so at the widths of a pruned model it is 3-10× slower than NCHW (128×9×32×32: 6.9 ms
forward and 14 ms backward, against 2.0 and 2.6 ms NCHW). Channels-last memory is a matrix of rows × C; read as
rows/k × kC, with k = 16 / gcd(C, 16), it has a multiple of 16 columns, column j·C + c holding channel c of every
k-th row. ATen's own kernels then run at full speed on that view: the forward takes the statistics of the kC
sub-columns (with the normalised output) and combines each channel's k equal-sized parts (Chan's parallel variance),
then corrects the output in one pass; the backward takes the two per-sub-column sums with the combined statistics
(the eval-mode backward kernel), adds their k parts and writes the input gradient in two passes. The arithmetic is
train-mode BatchNorm's, sums taken in another order (tests/test_folded_batchnorm.py compares it with ATen's in double
precision), the running statistics updated as ``nn.BatchNorm2d`` does. Why: the convolutions of a pruned model run
faster channels-last than NCHW at every width (``psp.reconstruct.layout``), but only if its BatchNorm keeps up.
"""

import math
import types
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from psp.reconstruct.layout import CHANNELS_LAST_BLOCK as BLOCK
from psp.reconstruct.layout import is_channels_last


def fold(channels: int) -> int:
    """How many rows to read as one so that the row has a multiple of ``BLOCK`` values."""
    return BLOCK // math.gcd(channels, BLOCK)


def _rows(t: torch.Tensor, k: int) -> torch.Tensor:
    """A channels-last tensor's memory as a (rows / k) × (k·C) matrix (a view)."""
    n, c, h, w = t.shape
    return t.permute(0, 2, 3, 1).view(n * h * w // k, c * k)


def foldable(x: torch.Tensor) -> bool:
    """A 4-d channels-last CPU float tensor whose width is not a multiple of ``BLOCK`` and whose rows fold evenly."""
    if x.dim() != 4 or x.device.type != "cpu" or not x.is_floating_point() or x.dtype not in (
            torch.float32, torch.float64):
        return False
    n, c, h, w = x.shape
    return c % BLOCK != 0 and (n * h * w) % fold(c) == 0 and n * h * w > fold(c) and is_channels_last(x)


class _FoldedBatchNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor, weight: torch.Tensor | None,
                bias: torch.Tensor | None, running_mean: torch.Tensor | None, running_var: torch.Tensor | None,
                factor: float, eps: float) -> torch.Tensor:
        n, c, h, w = x.shape
        k, count = fold(c), n * h * w
        y = torch.empty_like(x)
        sub_mean, sub_invstd = x.new_empty(k * c), x.new_empty(k * c)
        torch.ops.aten.native_batch_norm.out(_rows(x, k), None, None, None, None, True, 0.0, eps,
                                             out=_rows(y, k), save_mean=sub_mean, save_invstd=sub_invstd)
        # Each channel's k sub-columns have equal counts: its mean is theirs averaged, its variance their variances
        # plus their means' spread (Chan et al.).
        sub_means = sub_mean.view(k, c)
        mean = sub_means.mean(0)
        spread = sub_means - mean
        var = spread.pow(2).add_(sub_invstd.view(k, c).pow(-2).sub_(eps)).mean(0)
        invstd = (var + eps).rsqrt_()
        scale = invstd if weight is None else invstd * weight
        # y holds (x - sub_mean) · sub_invstd: make it (x - mean) · scale + bias in place.
        shift = spread * scale if bias is None else torch.addcmul(bias, spread, scale)
        torch.addcmul(shift.view(-1), _rows(y, k), (scale / sub_invstd.view(k, c)).view(-1), out=_rows(y, k))
        if running_mean is not None:
            running_mean.mul_(1 - factor).add_(mean, alpha=factor)
        if running_var is not None:
            running_var.mul_(1 - factor).add_(var, alpha=factor * count / (count - 1))
        ctx.save_for_backward(x, weight, mean, var, invstd)
        ctx.eps = eps
        return y

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple:
        x, weight, mean, var, invstd = ctx.saved_tensors
        n, c, h, w = x.shape
        k, count = fold(c), n * h * w
        grad = grad.contiguous(memory_format=torch.channels_last)
        # With the combined statistics as "running" ones, the eval-mode kernel sums g and g·x̂ per sub-column.
        _, sum_g_xhat, sum_g = torch.ops.aten.native_batch_norm_backward(
            _rows(grad, k), _rows(x, k), x.new_ones(k * c), mean.repeat(k), var.repeat(k), None, None, False, ctx.eps,
            [False, True, True])
        sum_g_xhat, sum_g = sum_g_xhat.view(k, c).sum(0), sum_g.view(k, c).sum(0)
        grad_input = None
        if ctx.needs_input_grad[0]:
            # (g - mean(g) - x̂ · mean(g·x̂)) · γ · invstd, as a · g + b · x + c per channel, in two passes. Its
            # x·b - mean·b loses bits to cancellation only as far as eps bounds invstd.
            a = invstd if weight is None else invstd * weight
            b = a * invstd * sum_g_xhat / -count
            c0 = (a * sum_g / -count).sub_(b * mean)
            grad_input = torch.empty_like(x)
            rows = _rows(grad_input, k)
            torch.addcmul(c0.repeat(k), _rows(grad, k), a.repeat(k), out=rows)
            rows.addcmul_(_rows(x, k), b.repeat(k))
        grad_weight = sum_g_xhat if weight is not None and ctx.needs_input_grad[1] else None
        grad_bias = sum_g if ctx.needs_input_grad[2] else None
        return grad_input, grad_weight, grad_bias, None, None, None, None


def _folded_forward(self: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """``nn.BatchNorm2d.forward`` (its momentum and step counting), folded when training on a foldable input."""
    if not (self.training and foldable(x)):
        return type(self).forward(self, x)
    factor = 0.0 if self.momentum is None else self.momentum
    if self.track_running_stats and self.num_batches_tracked is not None:
        self.num_batches_tracked.add_(1)
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
    tracked = self.track_running_stats
    return _FoldedBatchNorm.apply(x, self.weight, self.bias, self.running_mean if tracked else None,
                                  self.running_var if tracked else None, factor, self.eps)


def folds(m: nn.Module) -> bool:
    """A plain ``nn.BatchNorm2d`` whose width is not a multiple of ``BLOCK`` (subclasses keep their own forward)."""
    return type(m) is nn.BatchNorm2d and m.num_features % BLOCK != 0


@contextmanager
def folded_batchnorms(model: nn.Module, fmt: str, device: torch.device) -> Iterator[list[str]]:
    """Inside the block, when ``model`` runs channels-last (``fmt``) on CPU, its BatchNorms that :func:`folds` compute
    train mode folded on channels-last inputs (anything else as before); yields their names (none otherwise)."""
    names = [n for n, m in model.named_modules() if folds(m)] if (
        fmt == "channels_last" and device.type == "cpu") else []
    for n in names:
        m = model.get_submodule(n)
        m.forward = types.MethodType(_folded_forward, m)
    try:
        yield names
    finally:
        for n in names:
            del model.get_submodule(n).forward
