"""The holistic reconstruction loss: sum over layers of ||out - target||² / ||target||².

Each numerator is one pass that writes ``out - target`` and a dot product of it with itself; its backward doubles
that difference in place and hands it on, so a layer's outputs and targets are read once per step, not twice (the
loss is bound by memory bandwidth: ``mse_loss`` materialises the squared difference in the forward pass and its
backward reads both tensors again). The gradient is ``(out - target) · 2g`` in ``out``'s layout, bit for bit the
gradient ``mse_loss`` gives; an NCHW gradient reaching a channels-last model's BatchNorm would take a slow path
(``psp.reconstruct.layout``). The loss's value differs from ``mse_loss``'s only in its last bits (another summation
order); only logs and the finiteness check read it. The denominators come precomputed from the target store.
"""

import torch


class _SquaredError(torch.autograd.Function):
    """``||out - target||²``; the target is a constant (no gradient). Its backward runs once (no ``retain_graph``):
    it doubles the saved difference in place, so that the gradient buffer is the difference's own."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        diff = out - target  # a new dense tensor in out's layout, so its memory order is one flat run
        ctx.diff = diff  # not save_for_backward: the backward hands this very buffer on (nothing else holds it)
        flat = diff.as_strided((diff.numel(),), (1,))
        return torch.dot(flat, flat)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        if not hasattr(ctx, "diff"):
            raise RuntimeError("squared_error's backward runs once; retain_graph is not supported")
        diff = ctx.diff
        del ctx.diff
        return diff.mul_(2 * grad), None


def squared_error(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return _SquaredError.apply(out, target)


def holistic_loss(outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor],
                  denominators: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    total = outputs[next(iter(targets))].new_zeros(())
    for name, target in targets.items():
        denominator = denominators[name] if denominators is not None else target.pow(2).sum()
        total = total + squared_error(outputs[name], target) / denominator.clamp_min(1e-12)
    return total
