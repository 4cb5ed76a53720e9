"""Accuracy, size and MACs of a model (latency: ``psp.latency``).

MACs count multiply-accumulates of ``nn.Conv2d`` and ``nn.Linear`` layers only (batch 1, at the data spec's image
size); BatchNorm, activations, pooling and residual additions are not counted, as in the pruning literature.
"""

from collections.abc import Iterable

import torch
from torch import nn

from psp.modes import eval_mode


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def layer_macs(model: nn.Module, example: torch.Tensor) -> dict[str, int]:
    """MACs of each conv and linear layer for one image, measured with forward hooks."""
    macs: dict[str, int] = {}

    def hook(name: str):
        def record(m: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
            if isinstance(m, nn.Conv2d):
                per_out = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
                macs[name] = macs.get(name, 0) + out[:1].numel() * per_out
            else:
                macs[name] = macs.get(name, 0) + out[:1].numel() * m.in_features
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules()
               if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with eval_mode(model), torch.no_grad():
            model(example[:1])
    finally:
        for h in handles:
            h.remove()
    return macs


def count_macs(model: nn.Module, example: torch.Tensor) -> int:
    return sum(layer_macs(model, example).values())


@torch.no_grad()
def accuracy(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
             device: torch.device | str = "cpu") -> dict[str, float]:
    """Top-1 and top-5 accuracy as fractions in [0, 1] (top-5 equals 1 when there are at most 5 classes).

    The counts stay on the device until the end: one host synchronisation per evaluation, not per batch."""
    model.eval()
    correct1 = correct5 = torch.zeros((), dtype=torch.long, device=device)
    total = 0
    for x, y in batches:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        logits = model(x)
        k = min(5, logits.shape[1])
        top = logits.topk(k, dim=1).indices
        correct1 = correct1 + (top[:, 0] == y).sum()
        correct5 = correct5 + (top == y[:, None]).any(dim=1).sum()
        total += y.numel()
    if total == 0:
        raise ValueError("no test images to evaluate")
    return {"top1": correct1.item() / total, "top5": correct5.item() / total, "test_images": total}
