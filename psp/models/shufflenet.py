"""torchvision's ShuffleNetV2 with its channel split and shuffle as ``ChannelGather`` maps (same outputs, same
state dict), so that Torch-Pruning can remove channels anywhere in it."""

import torch
from torch import nn
from torchvision.models.shufflenetv2 import InvertedResidual

from psp.models.gather import ChannelGather, shuffle_index


class GatheredInvertedResidual(InvertedResidual):
    """A stride-1 block passes one part of its input through (``passed``) and transforms the other (``transformed``);
    a stride-2 block transforms all of it twice. Both concatenate and then shuffle (``shuffle``)."""

    passed: ChannelGather
    transformed: ChannelGather
    shuffle: ChannelGather

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            out = torch.cat((self.passed(x), self.branch2(self.transformed(x))), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return self.shuffle(out)


def gather_shufflenet_blocks(model: nn.Module) -> nn.Module:
    """Turn every torchvision ShuffleNetV2 block of ``model`` into a ``GatheredInvertedResidual``, in place."""
    for block in model.modules():
        if type(block) is not InvertedResidual:
            continue
        width = 2 * block.branch2[-3].out_channels  # both branches end with a 1x1 conv, BN and ReLU
        if block.stride == 1:
            half = width // 2
            block.passed = ChannelGather(width, list(range(half)))
            block.transformed = ChannelGather(width, list(range(half, width)))
        block.shuffle = ChannelGather(width, shuffle_index(width, 2))
        block.__class__ = GatheredInvertedResidual
    return model
