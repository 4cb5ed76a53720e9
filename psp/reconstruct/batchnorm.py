"""BatchNorm statistics re-estimated on calibration images, with no weight update."""

import torch
from torch import nn


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, images: torch.Tensor, batch_size: int = 128) -> int:
    """Reset every BatchNorm's running statistics and re-estimate them as an exact average over ``images``.

    Returns the number of images seen. The model is left in eval mode.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch counts equally
    model.train()
    device = next(model.parameters()).device
    for start in range(0, len(images), batch_size):
        model(images[start:start + batch_size].to(device))
    for m, momentum in zip(norms, saved, strict=True):
        m.momentum = momentum
    model.eval()
    return len(images)
