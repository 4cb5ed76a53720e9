"""Input gradients of NCHW "same" convolutions computed as forward convolutions, for PSP's reconstruction on CPU.

For a stride-1 convolution padded to keep its size, the gradient with respect to the input is the forward
convolution of the output gradient with the kernel flipped and its in/out channels swapped: the same multiply-adds,
summed in another order. On CPU in NCHW, oneDNN's backward-data kernel is much slower than its forward kernel at the
odd channel counts of a pruned model (128×9×32×32 → 8 channels, 3×3: 5.8 ms against 1.3 ms; at 8 → 8 channels 2.2
against 1.2 ms; 23 and 54 channels 1.95/1.71 and 1.80/1.59 ms): a pruned ResNet-56's convolutions took 1.72 s
against 1.96 s over four phase-2 steps. Channels-last kernels have no such gap, so this is for NCHW only: PSP's
phases on CPU run NCHW when asked to (``--memory-format contiguous``) or for models with grouped convolutions of odd
widths (``psp.reconstruct.layout``). The weight gradient is still oneDNN's.
"""

import types
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

import torch
from torch import nn
from torch.nn import functional as F

from psp.errors import choice_error
from psp.options import CONV_INPUT_GRADS


def resolve_conv_input_grad(setting: str, device: torch.device, fmt: str) -> str:
    """``auto``: ``forward`` on CPU in NCHW (``fmt`` contiguous), where it was measured faster; ``native`` otherwise
    (channels-last kernels have no gap; cuDNN not measured). An explicit choice stands."""
    if setting not in CONV_INPUT_GRADS:
        raise choice_error("conv input gradient", setting, CONV_INPUT_GRADS)
    if setting != "auto":
        return setting
    return "forward" if device.type == "cpu" and fmt == "contiguous" else "native"


class _SameConv2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor, weight: torch.Tensor,
                bias: torch.Tensor | None, padding: tuple[int, int]) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.padding, ctx.has_bias = padding, bias is not None
        return F.conv2d(x, weight, bias, 1, padding)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple:
        x, weight = ctx.saved_tensors
        needs_input, needs_weight, needs_bias = ctx.needs_input_grad[:3]
        grad_input = grad_weight = grad_bias = None
        if needs_input:
            grad_input = F.conv2d(grad, weight.flip(2, 3).transpose(0, 1), None, 1, ctx.padding)
        if needs_weight or needs_bias:
            _, grad_weight, grad_bias = torch.ops.aten.convolution_backward(
                grad, x, weight, [weight.shape[0]] if ctx.has_bias else None, [1, 1], list(ctx.padding), [1, 1],
                False, [0, 0], 1, [False, needs_weight, needs_bias])
        return grad_input, grad_weight, grad_bias, None


def _same_conv_forward(self: nn.Conv2d, x: torch.Tensor, weight: torch.Tensor,
                       bias: torch.Tensor | None) -> torch.Tensor:
    return _SameConv2d.apply(x, weight, bias, self.padding)


def is_same_conv(m: nn.Module) -> bool:
    """A dense 2-d convolution of stride 1 whose zero padding keeps the spatial size (odd kernel, padding k // 2)."""
    return (isinstance(m, nn.Conv2d) and m.stride == (1, 1) and m.dilation == (1, 1) and m.groups == 1
            and m.padding_mode == "zeros" and not isinstance(m.padding, str)
            and all(2 * p + 1 == k for p, k in zip(m.padding, m.kernel_size, strict=True)))


@contextmanager
def forward_input_gradients(model: nn.Module) -> Iterator[nn.Module]:
    """Inside the block, ``model``'s same convolutions compute their input gradient as a forward convolution."""
    convs = [m for m in model.modules() if is_same_conv(m)]
    for m in convs:
        m._conv_forward = types.MethodType(_same_conv_forward, m)
    try:
        yield model
    finally:
        for m in convs:
            del m._conv_forward


def input_gradients(model: nn.Module, how: str) -> AbstractContextManager[nn.Module]:
    """The block in which ``model`` computes input gradients as resolved (``forward`` or ``native``)."""
    return forward_input_gradients(model) if how == "forward" else nullcontext(model)
