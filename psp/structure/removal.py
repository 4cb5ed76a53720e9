"""Apply a selection: physically remove channels, or (for checks and penalties) address them in the dense model."""

from collections.abc import Iterator

import torch
import torch_pruning as tp
from torch import nn

from psp.models.shortcut import ChannelPadShortcut
from psp.structure.groups import build_graph, group_for
from psp.structure.selection import Selection


def remove_channels(model: nn.Module, selection: Selection, example: torch.Tensor) -> nn.Module:
    """Remove the selected channels from ``model`` in place and return it."""
    graph = build_graph(model, example)
    for root, idxs in selection.items():
        if idxs:
            group_for(graph, model, root, idxs).prune(record_history=False)
    return model


def selected_slices(model: nn.Module, selection: Selection,
                    example: torch.Tensor) -> Iterator[tuple[nn.Parameter, int, torch.Tensor]]:
    """``(weight, dim, indices)`` of every weight tied to a selected channel, in the unpruned ``model``.

    Conv/linear output rows (dim 0), consumer input columns (dim 1) and BatchNorm scales (dim 0): the weights PSP's
    phase 1 drives to zero.
    """
    graph = build_graph(model, example)
    for root, idxs in selection.items():
        for dep, dep_idxs in group_for(graph, model, root, idxs):
            layer, fn = dep.target.module, dep.handler
            index = torch.tensor(dep_idxs, dtype=torch.long)
            if fn in (tp.prune_conv_out_channels, tp.prune_linear_out_channels,
                      tp.prune_depthwise_conv_out_channels, tp.prune_batchnorm_out_channels):
                if getattr(layer, "weight", None) is not None:
                    yield layer.weight, 0, index
            elif fn in (tp.prune_conv_in_channels, tp.prune_linear_in_channels):
                if isinstance(layer, nn.Conv2d) and layer.groups > 1:
                    continue  # grouped conv input follows its output group; handled as its output
                yield layer.weight, 1, index


@torch.no_grad()
def mask_channels(model: nn.Module, selection: Selection, example: torch.Tensor) -> nn.Module:
    """Make every consumer of a selected channel ignore it, without removing anything.

    Zeroes the consumers' input weights and drops the channel from option-A shortcut maps: the dense model's output
    then equals the output of the model with those channels removed (the correctness invariant of the removal).
    """
    graph = build_graph(model, example)
    for root, idxs in selection.items():
        for dep, dep_idxs in group_for(graph, model, root, idxs):
            layer, fn = dep.target.module, dep.handler
            if fn in (tp.prune_conv_in_channels, tp.prune_linear_in_channels):
                layer.weight[:, dep_idxs] = 0
            elif isinstance(layer, ChannelPadShortcut) and fn == graph.get_pruner_of_module(layer).prune_in_channels:
                keep = ~torch.isin(layer.src, torch.tensor(dep_idxs, dtype=torch.long))
                layer.src, layer.dst = layer.src[keep], layer.dst[keep]
    return model


def kept_outputs(model: nn.Module, selection: Selection, example: torch.Tensor) -> dict[str, torch.Tensor]:
    """For each conv, linear and BatchNorm layer of the unpruned ``model`` whose outputs a selection shrinks, the
    original indices of the output channels that survive (targets for reconstructing the pruned model)."""
    graph = build_graph(model, example)
    removed: dict[str, set[int]] = {}
    names = {m: n for n, m in model.named_modules()}
    for root, idxs in selection.items():
        for dep, dep_idxs in group_for(graph, model, root, idxs):
            layer, fn = dep.target.module, dep.handler
            if fn in (tp.prune_conv_out_channels, tp.prune_linear_out_channels,
                      tp.prune_depthwise_conv_out_channels, tp.prune_batchnorm_out_channels):
                removed.setdefault(names[layer], set()).update(dep_idxs)
    kept = {}
    for name, gone in removed.items():
        layer = model.get_submodule(name)
        width = layer.num_features if isinstance(layer, nn.BatchNorm2d) else layer.weight.shape[0]
        kept[name] = torch.tensor([c for c in range(width) if c not in gone], dtype=torch.long)
    return kept
