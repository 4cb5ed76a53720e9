"""Adam with PSP's balanced per-layer learning rates.

The loss at layer l back-propagates into every earlier layer, so early layers receive the sum of many terms and
get over-updated. The released code gives the i-th reconstructed layer (module order, L layers) lr / (L − i): the
first gets lr / L, the last gets lr. ``power`` generalises it to lr / (L − i)^power: 1 is the released rule, 0 one
rate for all, and values between a milder balance (a search dimension of ``benchmarks/tune_psp.py``).
"""

import math

import torch
from torch import nn


def balanced_lrs(layers: list[str], lr: float, power: float = 1.0) -> dict[str, float]:
    n = len(layers)
    return {name: lr / (n - i) ** power for i, name in enumerate(layers)}


def reconstruction_optimizer(model: nn.Module, layers: list[str], lr: float, balanced: bool,
                             power: float = 1.0) -> torch.optim.Adam:
    """Adam over every parameter; with ``balanced`` each layer's parameters get their layer's learning rate."""
    if not balanced or power == 0:
        return torch.optim.Adam(model.parameters(), lr=lr)
    rates = balanced_lrs(layers, lr, power)
    groups, covered = [], set()
    for name in layers:
        params = list(model.get_submodule(name).parameters(recurse=False))
        covered.update(id(p) for p in params)
        if params:
            groups.append({"params": params, "lr": rates[name], "layer": name})
    rest = [p for p in model.parameters() if id(p) not in covered]
    if rest:
        groups.append({"params": rest, "lr": lr, "layer": None})
    return torch.optim.Adam(groups, lr=lr)


def phase_schedule(optimizer: torch.optim.Optimizer, schedule: str, steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-step learning-rate schedule of one phase: ``constant`` (released) or ``cosine`` decay to zero.

    Phase 1's ``replace`` penalty moves the selected weights by about the learning rate per step, so a decaying rate
    there also weakens the penalty (the setting ``phase2_cosine`` anneals phase 2 alone)."""
    if schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / steps)))
