"""Memory layout of PSP's reconstruction: channels-last (NHWC) on CPU for models whose widths come in blocks of 16.

On CPU, oneDNN runs the 16-channel 3×3 convolutions of a ResNet-56's first stage about 1.7× faster channels-last than
NCHW, forward and backward (a full-width phase-1 step: 0.77-0.89× the NCHW time, ``benchmarks/psp_layout.py``), and
a pruned ResNet-56's convolutions (widths 7-56) 0.70× (427 against 612 ms a step, input gradients NCHW as forward
convolutions, ``psp.reconstruct.conv_grad``). The gain holds only if every tensor of the step keeps that layout: one
NCHW gradient meeting a channels-last BatchNorm sends its backward down a slow path (12× measured). So the targets
are cached, gathered and restricted in the layout of the phase they serve (the helpers here), and the loss's
gradient keeps its output's layout (``psp.reconstruct.loss``). ATen's channels-last BatchNorm is fast only for widths
in blocks of 16; other widths are folded into such blocks (``psp.reconstruct.folded_batchnorm``), so a pruned model's
phase 2 runs channels-last too (a step 0.73-0.82 s against 0.88-0.91 s NCHW; 1.03-1.14 s with ATen's BatchNorm).

The layout changes the order of floating-point sums inside the kernels, not the arithmetic: results differ from an
NCHW run as they do between two CPU kernels (AVX2 against AVX-512). ``contiguous`` with ``--conv-input-grad native``
reproduces an NCHW run's arithmetic.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from psp.errors import choice_error
from psp.options import MEMORY_FORMATS

FORMATS = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}
# oneDNN's AVX-512 kernels and ATen's channels-last BatchNorm work on blocks of 16 channels. Convolutions of other
# widths were still faster channels-last (a pruned ResNet-56's, 7-56 channels).
CHANNELS_LAST_BLOCK = 16
_NHWC = (0, 2, 3, 1)  # NCHW dimensions in channels-last memory order
_NCHW = (0, 3, 1, 2)  # and back


def resolve_memory_format(setting: str, device: torch.device, model: nn.Module) -> str:
    """``auto``: channels-last on CPU when every 2-d convolution of ``model`` has a multiple of 16 output channels
    (where it was measured faster: PSP keeps it for the pruned model, folding its BatchNorms), NCHW otherwise (a
    narrow model such as resnet8_tiny, 8-32 channels, ran PSP in 2.5 s NCHW against 2.7-3.0 s channels-last with
    ATen's BatchNorm) and on CUDA (not measured: cuDNN's fp32 choice is left as it was); an explicit choice stands."""
    if setting not in MEMORY_FORMATS:
        raise choice_error("memory format", setting, MEMORY_FORMATS)
    if setting != "auto":
        return setting
    widths = [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)]
    blocked = bool(widths) and all(w % CHANNELS_LAST_BLOCK == 0 for w in widths)
    return "channels_last" if device.type == "cpu" and blocked else "contiguous"


def is_channels_last(t: torch.Tensor) -> bool:
    """Stored NHWC (a tensor that is both, e.g. with 1×1 spatial size, counts as NCHW: same memory)."""
    return t.dim() == 4 and not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last)


def in_memory_order(t: torch.Tensor) -> torch.Tensor:
    """A view of ``t`` whose dimensions follow its memory: NHWC for channels-last, ``t`` itself otherwise."""
    return t.permute(_NHWC) if is_channels_last(t) else t


def empty_rows(like: torch.Tensor, rows: int) -> torch.Tensor:
    """An uninitialised tensor of ``rows`` rows shaped and laid out like ``like``'s."""
    if is_channels_last(like):
        n, c, h, w = like.shape
        return like.new_empty((rows, h, w, c)).permute(_NCHW)
    return like.new_empty((rows, *like.shape[1:]))


def index_select(t: torch.Tensor, dim: int, index: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """``torch.index_select`` that keeps ``t``'s layout (the built-in one returns NCHW), into ``out`` if given (made
    by :func:`empty_rows` from ``t``)."""
    if not is_channels_last(t):
        return t.index_select(dim, index) if out is None else torch.index_select(t, dim, index, out=out)
    stored_dim = _NHWC.index(dim % 4)
    if out is None:
        return t.permute(_NHWC).index_select(stored_dim, index).permute(_NCHW)
    torch.index_select(t.permute(_NHWC), stored_dim, index, out=out.permute(_NHWC))
    return out


def select_channels(t: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """``t.index_select(1, keep)`` in ``t``'s layout. A channels-last CPU tensor's channels are its memory's innermost
    dimension, which ATen gathers one value at a time; there they are taken as a product with a 0/1 matrix instead
    (restricting a ResNet-56's cached targets to a pruned model's channels: 0.4 s against 1.7 s). Every product is a
    value times 1 plus zeros times finite values, so it is the value itself; a row holding a non-finite value turns
    to NaN, and a sum that is not finite sends the whole tensor to the gather (checking the sum, not each value: 0.5
    against 15 ms). Only at IEEE fp32 matmul precision (``highest``)."""
    exact = t.device.type == "cpu" and t.dtype in (torch.float32, torch.float64) and (
        torch.get_float32_matmul_precision() == "highest")
    if not (is_channels_last(t) and exact):
        return index_select(t, 1, keep)
    n, c, h, w = t.shape
    onehot = t.new_zeros(c, len(keep))
    onehot[keep, torch.arange(len(keep), device=keep.device)] = 1
    out = torch.mm(t.permute(_NHWC).reshape(-1, c), onehot)
    if not bool(torch.isfinite(out.sum())):
        return index_select(t, 1, keep)
    return out.view(n, h, w, len(keep)).permute(_NCHW)


def to_layout(t: torch.Tensor, fmt: str) -> torch.Tensor:
    """``t`` (a batch of images) in layout ``fmt``; anything but a 4-d tensor has no channels-last form."""
    return t.contiguous(memory_format=FORMATS[fmt]) if t.dim() == 4 else t


def to_memory_format(model: nn.Module, fmt: str) -> nn.Module:
    """Lay out every 4-d parameter and buffer of ``model`` (in place); values are unchanged."""
    return model.to(memory_format=FORMATS[fmt])


@contextmanager
def laid_out(model: nn.Module, fmt: str) -> Iterator[nn.Module]:
    """``model`` in layout ``fmt`` inside the block, NCHW again after it (the caller's model is not left changed)."""
    to_memory_format(model, fmt)
    try:
        yield model
    finally:
        to_memory_format(model, "contiguous")
