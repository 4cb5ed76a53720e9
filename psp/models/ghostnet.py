"""timm's GhostNet modules with their output slice as a ``ChannelGather`` map (same outputs, same state dict).

A Ghost module concatenates a conv's output with a cheap depthwise transform of it and keeps the first ``out_chs``
channels. Torch-Pruning cannot follow that slice through a removal (the pruned model slices at the old width), so
the slice becomes a gather whose map removal edits.
"""

import torch
import torch.nn.functional as F
from timm.models.ghostnet import GhostModule, GhostModuleV2
from torch import nn

from psp.models.gather import ChannelGather


class GatheredGhostModule(GhostModule):
    kept: ChannelGather

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.primary_conv(x)
        return self.kept(torch.cat([x1, self.cheap_operation(x1)], dim=1))


class GatheredGhostModuleV2(GhostModuleV2):
    """The V2 module also gates its output with a sigmoid of a conv branch on the downsampled input."""

    kept: ChannelGather

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.gate_fn(self.short_conv(F.avg_pool2d(x, kernel_size=2, stride=2)))
        x1 = self.primary_conv(x)
        out = self.kept(torch.cat([x1, self.cheap_operation(x1)], dim=1))
        return out * F.interpolate(gate, size=out.shape[-2:], mode="nearest")


_GATHERED = {GhostModule: GatheredGhostModule, GhostModuleV2: GatheredGhostModuleV2}


def gather_ghost_modules(model: nn.Module) -> nn.Module:
    """Turn every timm Ghost (V1 or V2) module of ``model`` into its gathered twin, in place."""
    for module in model.modules():
        gathered = _GATHERED.get(type(module))
        if gathered is None:
            continue
        width = module.primary_conv[0].out_channels + module.cheap_operation[0].out_channels
        module.kept = ChannelGather(width, list(range(module.out_chs)))
        module.__class__ = gathered
    return model
