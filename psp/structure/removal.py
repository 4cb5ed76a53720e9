"""Apply a selection: physically remove channels, or (for checks and penalties) address them in the dense model."""

from collections.abc import Iterator

import torch
from torch import nn

from psp.models.shortcut import ChannelPadShortcut
from psp.structure.groups import build_graph, group_for, widths_fixed
from psp.structure.selection import Selection
from psp.structure.tp import tp


def _selected_groups(model: nn.Module, selection: Selection, example: torch.Tensor,
                     graph: tp.DependencyGraph | None = None) -> tuple[tp.DependencyGraph, list[tp.dependency.Group]]:
    """``model``'s graph and the group of each selected root, cut down to its selected channels (all in the
    unpruned model's coordinates: nothing is removed while they are built)."""
    graph = graph or build_graph(model, example)
    with widths_fixed(graph):
        return graph, [group_for(graph, model, root, idxs) for root, idxs in selection.items() if idxs]


def remove_channels(model: nn.Module, selection: Selection, example: torch.Tensor,
                    graph: tp.DependencyGraph | None = None) -> nn.Module:
    """Remove the selected channels from ``model`` in place and return it (``graph``: ``model``'s own, if built)."""
    graph, groups = _selected_groups(model, selection, example, graph)
    # Every group's indices are in the unpruned model's coordinates, so each layer is cut once, by the union of what
    # all groups cut from it: pruning group by group would need Torch-Pruning to redo every concat offset between
    # groups (minutes on a DenseNet-201).
    merged: dict[tuple, tuple[tp.dependency.Dependency, set[int]]] = {}
    for group in groups:
        for dep, idxs in group:
            merged.setdefault((dep.target, dep.handler), (dep, set()))[1].update(idxs)
    combined = tp.dependency.Group()
    combined._DG = graph
    for dep, idxs in merged.values():
        combined.add_dep(dep, sorted(idxs))
    combined.prune(record_history=False)
    return model


def selected_slices(model: nn.Module, selection: Selection,
                    example: torch.Tensor) -> Iterator[tuple[nn.Parameter, int, torch.Tensor]]:
    """``(weight, dim, indices)`` of every weight tied to a selected channel, in the unpruned ``model``.

    Conv/linear output rows (dim 0), consumer input columns (dim 1) and BatchNorm scales (dim 0): the weights PSP's
    phase 1 drives to zero.
    """
    _, groups = _selected_groups(model, selection, example)
    for group in groups:
        for dep, dep_idxs in group:
            layer, fn = dep.target.module, dep.handler
            if getattr(layer, "weight", None) is None:  # an affine-free BatchNorm, an op: no weight to penalise
                continue
            index = torch.tensor(dep_idxs, dtype=torch.long, device=layer.weight.device)
            if fn in (tp.prune_conv_out_channels, tp.prune_linear_out_channels,
                      tp.prune_depthwise_conv_out_channels, tp.prune_batchnorm_out_channels):
                yield layer.weight, 0, index
            elif fn in (tp.prune_conv_in_channels, tp.prune_linear_in_channels):
                if isinstance(layer, nn.Conv2d) and layer.groups > 1:
                    continue  # a grouped conv reads a channel in one block of rows, not a column: left unpenalised
                yield layer.weight, 1, index


@torch.no_grad()
def mask_channels(model: nn.Module, selection: Selection, example: torch.Tensor) -> nn.Module:
    """Make every consumer of a selected channel ignore it, without removing anything.

    Zeroes the consumers' input weights, drops the channel from option-A shortcut maps, and makes each LayerNorm
    over channels take its statistics over the kept channels only: the dense model's output then equals the output
    of the model with those channels removed (the correctness invariant of the removal).
    """
    graph, groups = _selected_groups(model, selection, example)
    normed: dict[nn.LayerNorm, set[int]] = {}
    for group in groups:
        for dep, dep_idxs in group:
            layer, fn = dep.target.module, dep.handler
            if fn in (tp.prune_conv_in_channels, tp.prune_linear_in_channels):
                _zero_inputs(layer, dep_idxs)
            elif fn == tp.prune_layernorm_out_channels:
                normed.setdefault(layer, set()).update(dep_idxs)
            elif isinstance(layer, ChannelPadShortcut) and fn == graph.get_pruner_of_module(layer).prune_in_channels:
                keep = ~torch.isin(layer.src, torch.tensor(dep_idxs, dtype=torch.long, device=layer.src.device))
                layer.src, layer.dst = layer.src[keep], layer.dst[keep]
    parents = {child: (parent, name) for parent in model.modules() for name, child in parent.named_children()}
    for norm, gone in normed.items():
        parent, name = parents[norm]
        setattr(parent, name, KeptChannelNorm(norm, gone))
    return model


class KeptChannelNorm(nn.Module):
    """A LayerNorm over channels whose statistics ignore removed channels (their outputs are zero): what the
    LayerNorm computes once those channels are physically gone."""

    def __init__(self, norm: nn.LayerNorm, removed: set[int]) -> None:
        super().__init__()
        if len(norm.normalized_shape) != 1:
            raise ValueError(f"{type(norm).__name__} normalises over {tuple(norm.normalized_shape)}, not channels")
        if type(norm).forward is nn.LayerNorm.forward:
            self.dim = -1
        elif type(norm).__name__.lower().endswith("layernorm2d"):
            self.dim = 1
        else:
            raise ValueError(f"{type(norm).__name__}: which dimension it normalises is unknown")
        self.norm = norm
        width = norm.normalized_shape[0]
        device = next(norm.parameters(), torch.empty(0)).device
        self.register_buffer("keep", torch.tensor([c for c in range(width) if c not in removed], dtype=torch.long,
                                                  device=device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kept = x.index_select(self.dim, self.keep).movedim(self.dim, -1)
        weight = None if self.norm.weight is None else self.norm.weight[self.keep]
        bias = None if self.norm.bias is None else self.norm.bias[self.keep]
        y = nn.functional.layer_norm(kept, (len(self.keep),), weight, bias, self.norm.eps).movedim(-1, self.dim)
        return torch.zeros_like(x).index_copy(self.dim % x.dim(), self.keep, y)


def _zero_inputs(layer: nn.Module, idxs: list[int]) -> None:
    """Zero the weights reading input channels ``idxs``; a grouped conv reads channel c only in the block of output
    rows of c's group, at column c mod (inputs per group)."""
    if not (isinstance(layer, nn.Conv2d) and layer.groups > 1):
        layer.weight[:, idxs] = 0
        return
    per_in, per_out = layer.in_channels // layer.groups, layer.out_channels // layer.groups
    for c in idxs:
        block = c // per_in
        layer.weight[block * per_out:(block + 1) * per_out, c % per_in] = 0


def kept_outputs(model: nn.Module, selection: Selection, example: torch.Tensor) -> dict[str, torch.Tensor]:
    """For each conv, linear and BatchNorm layer of the unpruned ``model`` whose outputs a selection shrinks, the
    original indices of the output channels that survive (targets for reconstructing the pruned model)."""
    _, groups = _selected_groups(model, selection, example)
    removed: dict[str, set[int]] = {}
    names = {m: n for n, m in model.named_modules()}
    for group in groups:
        for dep, dep_idxs in group:
            layer, fn = dep.target.module, dep.handler
            if fn in (tp.prune_conv_out_channels, tp.prune_linear_out_channels,
                      tp.prune_depthwise_conv_out_channels, tp.prune_batchnorm_out_channels):
                removed.setdefault(names[layer], set()).update(dep_idxs)
    kept = {}
    for name, gone in removed.items():
        layer = model.get_submodule(name)
        width = layer.num_features if isinstance(layer, nn.BatchNorm2d) else layer.weight.shape[0]
        kept[name] = torch.tensor([c for c in range(width) if c not in gone], dtype=torch.long,
                                  device=layer.weight.device)
    return kept
