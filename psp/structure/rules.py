"""Torch-Pruning rules for the suite's own layers: the option-A shortcut and the channel gather."""

from collections.abc import Sequence

import torch

from psp.models.gather import ChannelGather
from psp.models.shortcut import ChannelPadShortcut
from psp.structure.tp import tp


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


class ChannelGatherPruner(tp.pruner.function.BasePruningFunc):
    """Input and output channels are tied through the map, so one function prunes both; it receives indices in the
    gather's *input* coordinates (the index mappings below translate them on the way to and from its outputs):
    entries reading a removed input go, the others are renumbered."""

    TARGET_MODULES = ChannelGather

    def prune_out_channels(self, layer: ChannelGather, idxs: Sequence[int]) -> ChannelGather:
        removed = torch.tensor(sorted(set(idxs)), dtype=torch.long, device=layer.index.device)
        keep = ~torch.isin(layer.index, removed)
        layer.index = layer.index[keep] - torch.searchsorted(removed, layer.index[keep])
        layer.in_channels -= len(removed)
        return layer

    prune_in_channels = prune_out_channels

    def get_out_channels(self, layer: ChannelGather) -> int:
        return layer.out_channels

    def get_in_channels(self, layer: ChannelGather) -> int:
        return layer.in_channels


class _GatherToOutputs:
    """Input channels of a gather -> the output positions that read them (the map as it is now)."""

    def __init__(self, layer: ChannelGather) -> None:
        self.layer = layer

    def __call__(self, idxs: list) -> list:
        positions: dict[int, list[int]] = {}
        for pos, src in enumerate(self.layer.index.tolist()):
            positions.setdefault(src, []).append(pos)
        return [type(i)(idx=p, root_idx=i.root_idx) for i in idxs for p in positions.get(i.idx, ())]


class _GatherToInputs:
    """Output positions of a gather -> the input channels they read."""

    def __init__(self, layer: ChannelGather) -> None:
        self.layer = layer

    def __call__(self, idxs: list) -> list:
        index = self.layer.index.tolist()
        return [type(i)(idx=index[i.idx], root_idx=i.root_idx) for i in idxs]


def map_gathers(graph: tp.DependencyGraph) -> None:
    """Give every edge between a gather and its consumers the translation to and from its input coordinates.

    Torch-Pruning applies an edge's mappings in list order and itself only ever sets slots 0 and 1 (a split's on its
    outputs' edges, a concat's on its inputs' edges, slot 1): the way out of a gather goes first (slot 0, before a
    concat's offset), the way back in goes last (appended, after a concat's offset).
    """
    for node in graph.module2node.values():
        if not isinstance(node.module, ChannelGather):
            continue
        for out_node in node.outputs:
            for dep in node.dependencies:
                if dep.target is out_node:
                    dep.index_mapping[0] = _GatherToOutputs(node.module)
            for dep in out_node.dependencies:
                if dep.target is node:
                    dep.index_mapping.append(_GatherToInputs(node.module))


CUSTOM_PRUNERS: dict[type, tp.pruner.function.BasePruningFunc] = {ChannelPadShortcut: ChannelPadShortcutPruner(),
                                                                  ChannelGather: ChannelGatherPruner()}
