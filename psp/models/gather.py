"""A parameter-free channel gather: channel splits and shuffles written as an explicit, prunable map.

ShuffleNet splits a feature map with ``chunk`` and mixes the halves with a reshape-transpose-reshape. Torch-Pruning
cannot follow either through a removal (a chunk splits at half the *current* width; the reshape fails to trace).
As a gather, ``out = x[:, index]``, both become one op whose map Torch-Pruning edits (see ``psp.structure.rules``):
removing input channels drops their entries and renumbers the rest, so the op stays exact at any width.
"""

import torch
from torch import nn


class ChannelGather(nn.Module):
    """``out = x[:, index]`` for an injective ``index`` into ``in_channels`` input channels."""

    def __init__(self, in_channels: int, index: list[int]) -> None:
        super().__init__()
        self.in_channels = in_channels
        # Non-persistent: checkpoints of the original architecture have no such keys; pruned models store the map in
        # their channel spec.
        self.register_buffer("index", torch.tensor(index, dtype=torch.long), persistent=False)

    @property
    def out_channels(self) -> int:
        return len(self.index)

    def set_map(self, in_channels: int, index: list[int]) -> None:
        self.in_channels = in_channels
        self.index = torch.tensor(index, dtype=torch.long, device=self.index.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.index_select(1, self.index)

    def extra_repr(self) -> str:
        return f"{self.in_channels} -> {self.out_channels}"


def shuffle_index(channels: int, groups: int) -> list[int]:
    """The gather equal to ShuffleNet's channel shuffle: view as (groups, channels/groups), transpose, flatten."""
    per_group = channels // groups
    return [(j % groups) * per_group + j // groups for j in range(channels)]
