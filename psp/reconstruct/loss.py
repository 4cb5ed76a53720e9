"""The holistic reconstruction loss: sum over layers of ||out - target||² / ||target||²."""

import torch


def holistic_loss(outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> torch.Tensor:
    total = outputs[next(iter(targets))].new_zeros(())
    for name, target in targets.items():
        total = total + (outputs[name] - target).pow(2).sum() / target.pow(2).sum().clamp_min(1e-12)
    return total
