"""The holistic reconstruction loss: sum over layers of ||out - target||² / ||target||².

Each numerator is ``mse_loss(reduction="sum")``, one fused op, and the denominators come precomputed from the target
store, so no batch-sized temporaries are allocated in the forward pass (on CPU, large temporaries cost page faults
every step). Its backward is written here: ``mse_loss``'s own zero-fills an NCHW gradient and then writes it, and
an NCHW gradient reaching a channels-last model's BatchNorm takes a slow path (``psp.reconstruct.layout``). This one
is ``(out - target) · 2g``, in ``out``'s layout, bit for bit the values ``mse_loss`` gives (doubling is exact).
"""

import torch
from torch.nn import functional as F


class _SquaredError(torch.autograd.Function):
    """``||out - target||²``; the target is a constant (no gradient)."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(out, target)
        return F.mse_loss(out, target, reduction="sum")

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        out, target = ctx.saved_tensors
        return (out - target).mul_(2 * grad), None


def squared_error(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return _SquaredError.apply(out, target)


def holistic_loss(outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor],
                  denominators: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    total = outputs[next(iter(targets))].new_zeros(())
    for name, target in targets.items():
        denominator = denominators[name] if denominators is not None else target.pow(2).sum()
        total = total + squared_error(outputs[name], target) / denominator.clamp_min(1e-12)
    return total
