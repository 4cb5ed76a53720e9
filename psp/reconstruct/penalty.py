"""PSP's phase-1 sparsity penalty on the weights of the selected channels.

``replace`` (the released code): after the backward pass, the gradient of each selected weight is *replaced* by
λ_j · W · lr. Adam normalises it, so the weights walk towards zero by about lr per step and, crucially, stop
learning the reconstruction while the other channels learn to carry it.

``add``: λ_j · W is added to the reconstruction gradient (measured 6 points worse: the doomed channels keep
learning the reconstruction).

``decay``: the reconstruction gradient of the selected weights is zeroed (keeping the property above) and, after
each optimiser step, the weights shrink multiplicatively, W ← (1 − λ_j) · W, outside Adam — a decay proportional
to the weight rather than Adam's constant-size steps, so the channels fade to zero before removal.
"""

import torch
from torch import nn

Slice = tuple[nn.Parameter, int, torch.Tensor]


def penalise_gradients(slices: list[Slice], mode: str, strength: float, lr: float) -> None:
    """Apply the penalty to the gradients (call between backward and the optimiser step)."""
    for weight, dim, idx in slices:
        if weight.grad is None:
            continue
        selected = weight.detach().index_select(dim, idx)
        if mode == "replace":
            weight.grad.index_copy_(dim, idx, selected * (strength * lr))
        elif mode == "add":
            weight.grad.index_add_(dim, idx, selected * strength)
        else:
            weight.grad.index_fill_(dim, idx, 0.0)


@torch.no_grad()
def decay_weights(slices: list[Slice], strength: float) -> None:
    """The ``decay`` penalty's step (call after the optimiser step)."""
    for weight, dim, idx in slices:
        weight.index_copy_(dim, idx, weight.index_select(dim, idx) * (1 - min(strength, 1.0)))
