"""Dependency groups: the channels that must be removed together, from Torch-Pruning's ``DependencyGraph``.

A group is identified by its root layer's name (a conv or linear whose output channels lead the group), so that a
selection made on one copy of a model applies to another copy (PSP prunes a copy it trained in phase 1).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from psp.modes import eval_mode
from psp.structure.rules import CUSTOM_PRUNERS, map_gathers
from psp.structure.tp import tp

Units = list[list[int]]  # channels that go together, as lists of a group's channel indices


@dataclass
class ChannelGroup:
    """One dependency group: ``root`` names the leading layer, ``size`` is its number of channels, ``units`` the
    channels that can only be removed together.

    A unit is one channel, or more where the architecture ties channels: a grouped convolution splits them into
    equal blocks that must keep the same width, so a unit is one position in every block (as Torch-Pruning's own
    pruner does); GhostNet concatenates a conv's output with a depthwise transform of it into a residual stream, so
    stream channels c and c + half go together.
    """

    root: str
    size: int
    group: tp.dependency.Group  # the full group (all indices) in the graph it was built from
    units: Units


def execution_order(model: nn.Module, example: torch.Tensor) -> list[str]:
    """Names of the conv and linear layers in the order a forward pass first runs them."""
    names = {m: n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    order: dict[str, None] = {}
    handles = [m.register_forward_hook(lambda m, i, o: order.setdefault(names[m])) for m in names]
    try:
        with eval_mode(model), torch.no_grad():
            model(example[:1])
    finally:
        for h in handles:
            h.remove()
    return list(order)


def output_layer(model: nn.Module, example: torch.Tensor) -> nn.Module:
    """The last conv or linear layer to run in a forward pass: the classifier, which is never pruned."""
    return model.get_submodule(execution_order(model, example)[-1])


def build_graph(model: nn.Module, example: torch.Tensor) -> tp.DependencyGraph:
    """Trace ``model`` (in eval mode, restored afterwards) with the suite's custom pruning rules."""
    with eval_mode(model), torch.enable_grad():
        graph = tp.DependencyGraph().build_dependency(
            model, example_inputs=example[:1], customized_pruners=CUSTOM_PRUNERS, verbose=False)
    map_gathers(graph)
    return graph


@contextmanager
def widths_fixed(graph: tp.DependencyGraph) -> Iterator[None]:
    """Build many groups of ``graph`` while no channel is removed.

    Torch-Pruning recomputes every index mapping (the offsets through each concat and split) for every group it
    builds, which is needed only once widths change: on a DenseNet, where every layer feeds a concat, that made
    collecting groups quadratic (tens of seconds). With widths fixed, the mappings are computed once.
    """
    update = tp.dependency.index_mapping.update_index_mapping
    update(graph)
    tp.dependency.index_mapping.update_index_mapping = lambda _graph: None
    try:
        yield
    finally:
        tp.dependency.index_mapping.update_index_mapping = update


def channel_groups(model: nn.Module, example: torch.Tensor,
                   graph: tp.DependencyGraph | None = None) -> list[ChannelGroup]:
    """Every prunable group, rooted at conv or linear layers, the classifier excluded."""
    graph = graph or build_graph(model, example)
    names = {m: n for n, m in model.named_modules()}
    classifier = output_layer(model, example)
    with widths_fixed(graph):
        return [ChannelGroup(names[group[0].dep.target.module], len(group[0].idxs), group, _units(graph, group))
                for group in graph.get_all_groups(ignored_layers=[classifier],
                                                  root_module_types=(nn.Conv2d, nn.Linear))]


def _units(graph: tp.DependencyGraph, group: tp.dependency.Group) -> Units:
    """Blocks of grouped convolutions first, then any channels a removal drags along (found by asking Torch-Pruning
    what removing the first unit removes: cheap, and only where that is more than the unit, every unit is asked)."""
    size = len(group[0].idxs)
    blocks = max([m.groups for m in (dep.target.module for dep, _ in group)
                  if isinstance(m, nn.Conv2d) and 1 < m.groups != m.out_channels], default=1)
    per_block = size // blocks
    units = [[p + b * per_block for b in range(blocks)] for p in range(per_block)]
    root = group[0].dep.target.module
    if _dragged(graph, root, units[0]) == set(units[0]):
        return units
    owner = list(range(size))  # union-find over channels

    def find(c: int) -> int:
        while owner[c] != c:
            owner[c] = owner[owner[c]]
            c = owner[c]
        return c

    for unit in units:
        for c in _dragged(graph, root, unit) | set(unit):
            owner[find(c)] = find(unit[0])
    classes: dict[int, list[int]] = {}
    for c in range(size):
        classes.setdefault(find(c), []).append(c)
    return list(classes.values())


def _dragged(graph: tp.DependencyGraph, root: nn.Module, idxs: list[int]) -> set[int]:
    """The root layer's output channels that removing ``idxs`` of them removes."""
    out_fn = graph.get_pruner_of_module(root).prune_out_channels
    return {i for dep, dep_idxs in graph.get_pruning_group(root, out_fn, idxs)
            if dep.target.module is root and graph.is_out_channel_pruning_fn(dep.handler) for i in dep_idxs}


def group_for(graph: tp.DependencyGraph, model: nn.Module, root: str, idxs: list[int]) -> tp.dependency.Group:
    """The group rooted at layer ``root`` of ``model``, cut down to channel indices ``idxs``."""
    module = model.get_submodule(root)
    pruner = graph.get_pruner_of_module(module)
    return graph.get_pruning_group(module, pruner.prune_out_channels, idxs)
