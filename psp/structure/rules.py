"""Torch-Pruning rules for the suite's own layers (the option-A shortcut)."""

from collections.abc import Sequence

import torch
import torch_pruning as tp

from psp.models.shortcut import ChannelPadShortcut


def _drop(positions: torch.Tensor, keep: torch.Tensor, removed: Sequence[int]) -> torch.Tensor:
    """Renumber surviving positions after the channels in ``removed`` disappear."""
    removed_t = torch.tensor(sorted(removed), dtype=torch.long, device=positions.device)
    return positions[keep] - torch.searchsorted(removed_t, positions[keep])


class ChannelPadShortcutPruner(tp.pruner.function.BasePruningFunc):
    """Input and output channels are independent (no intra-layer dependency): removing an input channel only drops
    its entry from the map (its output position becomes a zero channel); removing an output channel drops the entry
    that fed it."""

    TARGET_MODULES = ChannelPadShortcut

    def prune_out_channels(self, layer: ChannelPadShortcut, idxs: Sequence[int]) -> ChannelPadShortcut:
        keep = ~torch.isin(layer.dst, torch.tensor(list(idxs), dtype=torch.long, device=layer.dst.device))
        layer.src, layer.dst = layer.src[keep], _drop(layer.dst, keep, idxs)
        layer.out_channels -= len(set(idxs))
        return layer

    def prune_in_channels(self, layer: ChannelPadShortcut, idxs: Sequence[int]) -> ChannelPadShortcut:
        keep = ~torch.isin(layer.src, torch.tensor(list(idxs), dtype=torch.long, device=layer.src.device))
        layer.dst, layer.src = layer.dst[keep], _drop(layer.src, keep, idxs)
        layer.in_channels -= len(set(idxs))
        return layer

    def get_out_channels(self, layer: ChannelPadShortcut) -> int:
        return layer.out_channels

    def get_in_channels(self, layer: ChannelPadShortcut) -> int:
        return layer.in_channels


CUSTOM_PRUNERS: dict[type, tp.pruner.function.BasePruningFunc] = {ChannelPadShortcut: ChannelPadShortcutPruner()}
