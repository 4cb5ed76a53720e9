"""The holistic reconstruction loss: sum over layers of ||out - target||² / ||target||².

Each term is computed by a forward hook as its layer's output is made, while that output is still in the processor's
cache: the layer's targets are gathered, the output subtracted and the squares summed in one pass where a kernel
applies (``TargetBatch.residual``, ``psp.reconstruct.residual``), the difference written into the batch's buffer for
the layer. The term's node joins the output's history, so its backward receives what the later layers
send back and adds the term's gradient to it in one pass, into that buffer (autograd would scale the buffer in one
pass and add it in another: 1.03 against 1.07 s a full-width ResNet-56 phase-1 step). The loss is bound by memory
bandwidth: this reads each output and target once per step (a phase-1 step took 0.89× the time of taps collected
first and a loss over all of them after; ``mse_loss`` besides materialises the squared difference and its backward
reads both tensors again). The gradient is ``(out - target) · 2g`` in ``out``'s layout (bit for bit ``mse_loss``'s
where no later layer adds to it; where one does, the sum may be fused, rounded once): an NCHW gradient reaching a
channels-last model's BatchNorm would take a slow path (``psp.reconstruct.layout``). The loss's value differs from
``mse_loss``'s only in its last bits (another summation order); only logs and the finiteness check read it.
"""

import torch
from torch import nn

from psp.reconstruct.residual import subtract
from psp.reconstruct.taps import LayerHooks
from psp.reconstruct.targets import TargetBatch


class _LayerTerm(torch.autograd.Function):
    """One layer's term ``||residual||² / d``, with ``residual = target - out`` already written (the caller's
    scratch: no gradient), ``out`` handed back as itself with this node in its history.

    The backward receives the gradient reaching ``out`` from the layers after it and the term's own, and adds the
    term's, ``(out - target) · 2g / d``, to the first in one pass, into the residual's buffer: autograd would
    otherwise scale the buffer (one pass) and then add it (another). ``out`` is not saved, so a consumer may still
    change it in place (``nn.ReLU(inplace=True)``); it is marked dirty rather than returned as a view, which such a
    change would forbid. The backward runs once (no ``retain_graph``)."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, out: torch.Tensor, residual: torch.Tensor,
                squared: torch.Tensor, denominator: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ctx.residual, ctx.denominator = residual, denominator  # not save_for_backward: the buffer is handed on
        ctx.mark_dirty(out)
        ctx.set_materialize_grads(False)
        return out, squared / denominator

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad_out: torch.Tensor | None,
                 grad_term: torch.Tensor | None) -> tuple[torch.Tensor | None, None, None, None]:
        if not hasattr(ctx, "residual"):
            raise RuntimeError("the holistic loss's backward runs once; retain_graph is not supported")
        residual = ctx.residual
        del ctx.residual
        if grad_term is None:  # the term is not in the loss (its layer ran again): only pass the gradient on
            return grad_out, None, None, None
        # (target - out) · (-2g / d) is (out - target) · 2g / d exactly: negation commutes with rounding.
        scale = grad_term * -2 / ctx.denominator
        if grad_out is None:
            return residual.mul_(scale), None, None, None
        return torch.addcmul(grad_out, residual, scale, out=residual), None, None, None


def layer_term(out: torch.Tensor, target: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """``||out - target||² / denominator``; overwrites ``target`` (with ``target - out``) and puts the term's node
    into ``out``'s history, so the gradient reaching ``out`` from later layers includes it."""
    return _LayerTerm.apply(out, target, subtract(target, out), denominator)[1]


class HolisticLoss(LayerHooks):
    """``with HolisticLoss(model, layers, store.batch(idx)) as loss: model(x)``, then ``loss.total()``. A layer
    called twice counts once, with its last output (as a loss over collected outputs would); targets computed per
    batch rather than cached serve each layer once (``TargetBatch.take``)."""

    def __init__(self, model: nn.Module, layers: list[str], batch: TargetBatch) -> None:
        super().__init__(model, layers)
        self.batch = batch
        self.terms: dict[str, torch.Tensor] = {}

    def on_output(self, name: str, output: torch.Tensor) -> None:
        residual, squared, denominator = self.batch.residual(name, output)
        self.terms[name] = _LayerTerm.apply(output, residual, squared, denominator.clamp_min(1e-12))[1]

    def total(self) -> torch.Tensor:
        """The sum of the terms (one reduction: its order of sums reaches only the logged value)."""
        return torch.stack([self.terms[name] for name in self.names]).sum()
