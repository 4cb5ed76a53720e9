"""A parameter-free, prunable option-A shortcut (He et al. 2016).

The public CIFAR ResNets subsample by 2 and zero-pad the channel dimension in a lambda. Torch-Pruning traces that
as an element-wise op and breaks the model after pruning. Here the shortcut is a module holding an explicit map:
input channel ``src[k]`` lands on output channel ``dst[k]``, every other output channel is zero. Removing channels on
either side only edits the map (see ``psp.structure.rules``), so the shortcut stays parameter-free and exact.
"""

import torch
from torch import nn


class ChannelPadShortcut(nn.Module):
    """``out[:, dst] = x[:, src, ::stride, ::stride]``; other output channels are zero."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 2) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(f"option-A shortcut cannot shrink {in_channels} to {out_channels} channels")
        pad = (out_channels - in_channels) // 2
        self.stride = stride
        self.in_channels = in_channels
        self.out_channels = out_channels
        # Non-persistent: the public checkpoints have no such keys; pruned models store the map in their spec.
        self.register_buffer("src", torch.arange(in_channels), persistent=False)
        self.register_buffer("dst", torch.arange(in_channels) + pad, persistent=False)

    def set_map(self, in_channels: int, out_channels: int, src: list[int], dst: list[int]) -> None:
        device = self.src.device
        self.in_channels, self.out_channels = in_channels, out_channels
        self.src = torch.tensor(src, dtype=torch.long, device=device)
        self.dst = torch.tensor(dst, dtype=torch.long, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # A gather from the input plus one zero channel, not a scatter into zeros: the same values, and a graph that
        # ONNX exports with a batch-independent shape (a scatter exports with the traced batch size fixed).
        x = x[:, :, :: self.stride, :: self.stride]
        gather = torch.full((self.out_channels,), x.shape[1], dtype=torch.long, device=x.device)
        gather[self.dst] = self.src
        return nn.functional.pad(x, (0, 0, 0, 0, 0, 1)).index_select(1, gather)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}, mapped={len(self.src)}"
