"""Which channels to remove: global or uniform ranking, by channel ratio or by a target MACs reduction.

A selection maps each group's root layer name to the sorted channel indices to remove. MACs of a candidate
selection are predicted analytically (each group shrinks known layers by known factors), so that the search for a
target MACs reduction never touches the model; the measured MACs after removal match the prediction (tested).
"""

from dataclasses import dataclass

import torch
import torch_pruning as tp
from torch import nn

from psp.errors import UsageError
from psp.metrics import layer_macs
from psp.structure.groups import ChannelGroup

Selection = dict[str, list[int]]
MODES = ("global", "uniform")
TARGET_TOLERANCE = 0.02


@dataclass
class _LayerCost:
    macs: int
    in_channels: int
    out_channels: int
    depthwise: bool


class CostModel:
    """Predicts a model's MACs after removing a given number of channels from each group."""

    def __init__(self, model: nn.Module, example: torch.Tensor, groups: list[ChannelGroup]) -> None:
        measured = layer_macs(model, example)
        self.layers: dict[str, _LayerCost] = {}
        for name, m in model.named_modules():
            if name in measured:
                cin = m.in_channels if isinstance(m, nn.Conv2d) else m.in_features
                cout = m.out_channels if isinstance(m, nn.Conv2d) else m.out_features
                depthwise = isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels
                self.layers[name] = _LayerCost(measured[name], cin, cout, depthwise)
        self.dense = sum(c.macs for c in self.layers.values())
        names = {m: n for n, m in model.named_modules()}
        self.effects: dict[str, list[tuple[str, str, float]]] = {}  # root -> (layer, 'in'|'out', factor)
        for g in groups:
            effects = []
            for dep, idxs in g.group:
                layer = names.get(dep.target.module)
                if layer not in self.layers:
                    continue
                side = "out" if dep.handler in _OUT_FNS else "in" if dep.handler in _IN_FNS else None
                if side:
                    effects.append((layer, side, len(idxs) / g.size))
            self.effects[g.root] = effects

    def macs(self, removed: dict[str, int]) -> float:
        cut_in: dict[str, float] = {}
        cut_out: dict[str, float] = {}
        for root, k in removed.items():
            for layer, side, factor in self.effects.get(root, ()):
                target = cut_out if side == "out" else cut_in
                target[layer] = target.get(layer, 0.0) + factor * k
        total = 0.0
        for name, c in self.layers.items():
            out_frac = 1 - cut_out.get(name, 0.0) / c.out_channels
            in_frac = 1.0 if c.depthwise else 1 - cut_in.get(name, 0.0) / c.in_channels
            total += c.macs * max(out_frac, 0.0) * max(in_frac, 0.0)
        return total


_OUT_FNS = {tp.prune_conv_out_channels, tp.prune_linear_out_channels, tp.prune_depthwise_conv_out_channels}
_IN_FNS = {tp.prune_conv_in_channels, tp.prune_linear_in_channels}


def _round_kept(kept: int, size: int, multiple: int, min_keep: int) -> int:
    if multiple > 1:
        kept = max(multiple, int(round(kept / multiple)) * multiple)
    return min(size, max(kept, min_keep))


def _removal_order(scores: dict[str, torch.Tensor], mode: str) -> list[str]:
    """The root of each channel in the order a ranking removes them (lowest score first)."""
    roots = list(scores)
    if mode == "global":
        keys = torch.cat([scores[r] for r in roots])
    else:  # uniform: interleave groups by the fraction of each group removed so far
        keys = torch.cat([(torch.arange(len(scores[r])) + 1.0) / len(scores[r]) for r in roots])
    owner = torch.cat([torch.full((len(scores[r]),), i) for i, r in enumerate(roots)])
    return [roots[i] for i in owner[torch.argsort(keys, stable=True)].tolist()]


def _to_selection(scores: dict[str, torch.Tensor], counts: dict[str, int], min_keep: int,
                  round_to: int) -> Selection:
    selection = {}
    for root, n in counts.items():
        size = len(scores[root])
        remove = size - _round_kept(size - min(n, size - min_keep), size, round_to, min_keep)
        if remove > 0:
            selection[root] = sorted(torch.argsort(scores[root], stable=True)[:remove].tolist())
    return selection


def _ratio_counts(scores: dict[str, torch.Tensor], ratio: float, mode: str, min_keep: int) -> dict[str, int]:
    if mode == "uniform":
        return {root: int(ratio * len(s)) for root, s in scores.items()}
    counts = dict.fromkeys(scores, 0)
    budget = int(ratio * sum(len(s) for s in scores.values()))
    for root in _removal_order(scores, mode):
        if budget == 0:
            break
        if len(scores[root]) - counts[root] > min_keep:
            counts[root] += 1
            budget -= 1
    return counts


def select_by_ratio(scores: dict[str, torch.Tensor], ratio: float, mode: str = "global", min_keep: int = 1,
                    round_to: int = 1) -> Selection:
    """Remove ``ratio`` of all channels: lowest scores across groups (global) or within each group (uniform).

    No group keeps fewer than ``min_keep`` channels; kept counts are rounded to a multiple of ``round_to``.
    """
    if not 0 < ratio < 1:
        raise UsageError(f"ratio {ratio} is outside (0, 1)")
    if mode not in MODES:
        raise UsageError(f"unknown selection mode {mode!r}; accepted: {', '.join(MODES)}")
    return _to_selection(scores, _ratio_counts(scores, ratio, mode, min_keep), min_keep, round_to)


def select_by_target_macs(scores: dict[str, torch.Tensor], cost: CostModel, target: float, mode: str = "global",
                          min_keep: int = 1, round_to: int = 1) -> Selection:
    """Remove channels until the model has ``1/target`` of its dense MACs, within ±2 %.

    Bisects the channel ratio of ``select_by_ratio``. One channel of a wide, early residual stream can cost several
    percent of the MACs, so the last step may overshoot the tolerance: then the channels that follow in the ranking
    are added one by one, in ranking order, skipping any that would overshoot, until the target is met.
    """
    if not target > 1:
        raise UsageError(f"target MACs reduction {target} must be > 1")
    if mode not in MODES:
        raise UsageError(f"unknown selection mode {mode!r}; accepted: {', '.join(MODES)}")

    def removed(counts: dict[str, int]) -> dict[str, int]:
        sizes = {r: len(scores[r]) for r in counts}
        return {r: sizes[r] - _round_kept(sizes[r] - min(n, sizes[r] - min_keep), sizes[r], round_to, min_keep)
                for r, n in counts.items()}

    def reduction(counts: dict[str, int]) -> float:
        return cost.dense / cost.macs(removed(counts))

    most = reduction({r: len(s) for r, s in scores.items()})
    if most < target * (1 - TARGET_TOLERANCE):
        raise UsageError(f"target MACs reduction {target} is unreachable with {mode} selection: at most "
                         f"{most:.2f}x while keeping {min_keep} channel(s) per layer")
    lo, hi = 0.0, 1.0 - 1e-9
    for _ in range(40):
        mid = (lo + hi) / 2
        if reduction(_ratio_counts(scores, mid, mode, min_keep)) < target:
            lo = mid
        else:
            hi = mid
    counts = _ratio_counts(scores, lo, mode, min_keep)
    taken = dict.fromkeys(scores, 0)
    for root in _removal_order(scores, mode):
        if reduction(counts) > target * (1 - TARGET_TOLERANCE / 20):
            break
        taken[root] += 1
        if taken[root] <= counts[root] or len(scores[root]) - counts[root] <= min_keep:
            continue
        counts[root] += 1
        if reduction(counts) > target:
            counts[root] -= 1
    got = reduction(counts)
    if abs(got / target - 1) > TARGET_TOLERANCE:
        raise UsageError(f"target MACs reduction {target} cannot be met within ±2 % with {mode} selection "
                         f"(closest: {got:.3f}x); try another --round-to or target")
    return _to_selection(scores, counts, min_keep, round_to)
