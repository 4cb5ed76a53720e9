"""The holistic reconstruction loss: sum over layers of ||out - target||² / ||target||².

Each term is computed by a forward hook as its layer's output is made, while that output is still in the processor's
cache, against the layer's targets gathered just then (``TargetBatch.take``); the difference is written into the
gathered buffer itself, and the backward doubles it in place and hands it on. The loss is bound by memory bandwidth:
this reads each output and target once per step (a full-width ResNet-56 phase-1 step took 0.89× the time of taps
collected first and a loss over all of them after; ``mse_loss`` besides materialises the squared difference and its
backward reads both tensors again). The gradient is ``(out - target) · 2g`` in ``out``'s layout, bit for bit the one
``mse_loss`` gives: an NCHW gradient reaching a channels-last model's BatchNorm would take a slow path
(``psp.reconstruct.layout``). The loss's value differs from ``mse_loss``'s only in its last bits (another summation
order); only logs and the finiteness check read it. The terms are summed in layer order, as before.
"""

import torch
from torch import nn

from psp.reconstruct.taps import LayerHooks
from psp.reconstruct.targets import TargetBatch


class _SquaredError(torch.autograd.Function):
    """``||out - target||²``, writing ``target - out`` into ``target`` (the caller's scratch: no gradient). Its
    backward runs once (no ``retain_graph``): it scales that buffer in place, so the gradient is the buffer itself."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        residual = torch.sub(target, out, out=target)  # dense, in out's layout: its memory is one flat run
        ctx.residual = residual  # not save_for_backward: the backward hands this very buffer on
        flat = residual.as_strided((residual.numel(),), (1,))
        return torch.dot(flat, flat)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        if not hasattr(ctx, "residual"):
            raise RuntimeError("squared_error's backward runs once; retain_graph is not supported")
        residual = ctx.residual
        del ctx.residual
        # (target - out) · (-2g) is (out - target) · 2g exactly: negation commutes with rounding.
        return residual.mul_(-2 * grad), None


def squared_error(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``||out - target||²``; overwrites ``target`` (with ``target - out``)."""
    return _SquaredError.apply(out, target)


class HolisticLoss(LayerHooks):
    """``with HolisticLoss(model, layers, store.batch(idx)) as loss: model(x)``, then ``loss.total()``. A layer
    called twice counts once, with its last output (as a loss over collected outputs would); targets computed per
    batch rather than cached serve each layer once (``TargetBatch.take``)."""

    def __init__(self, model: nn.Module, layers: list[str], batch: TargetBatch) -> None:
        super().__init__(model, layers)
        self.batch = batch
        self.terms: dict[str, torch.Tensor] = {}

    def on_output(self, name: str, output: torch.Tensor) -> None:
        target, denominator = self.batch.take(name)
        self.terms[name] = squared_error(output, target) / denominator.clamp_min(1e-12)

    def total(self) -> torch.Tensor:
        total = self.terms[self.names[0]].new_zeros(())
        for name in self.names:
            total = total + self.terms[name]
        return total
