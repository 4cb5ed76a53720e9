"""Which channels to remove: global or uniform ranking, by channel ratio or by a target MACs reduction.

A selection maps each group's root layer name to the sorted channel indices to remove. MACs of a candidate
selection are predicted analytically (each group shrinks known layers by known factors), so that the search for a
target MACs reduction never touches the model; the measured MACs after removal match the prediction (tested).
"""

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from psp.errors import UsageError, choice_error
from psp.metrics import layer_macs
from psp.options import SELECTIONS
from psp.settings import PruneSettings
from psp.structure.groups import ChannelGroup, Units, channel_groups
from psp.structure.importance import score_groups
from psp.structure.tp import tp

Selection = dict[str, list[int]]
TARGET_TOLERANCE = 0.02


class CostModel:
    """Predicts a model's MACs after removing given channels of its groups, exactly.

    Each group shrinks each of its layers by a known number of channels per root channel (one, or several through
    a flatten, or none when a split sends that channel elsewhere), read from Torch-Pruning's root indices. Held as
    flat tensors, so that one prediction costs a few vector operations: the target-MACs search makes thousands of
    them on wide, densely connected models.
    """

    def __init__(self, model: nn.Module, example: torch.Tensor, groups: list[ChannelGroup]) -> None:
        measured = layer_macs(model, example)
        layers = [(n, m) for n, m in model.named_modules() if n in measured]
        self._names = [n for n, _ in layers]
        position = {m: i for i, (_, m) in enumerate(layers)}
        self._macs = torch.tensor([measured[n] for n, _ in layers], dtype=torch.float64)
        self._in = torch.tensor([m.in_channels if isinstance(m, nn.Conv2d) else m.in_features for _, m in layers],
                                dtype=torch.float64)
        self._out = torch.tensor([m.out_channels if isinstance(m, nn.Conv2d) else m.out_features
                                  for _, m in layers], dtype=torch.float64)
        # A depthwise conv's input channels are its output channels: it shrinks once, on the output side.
        self._depthwise = torch.tensor([isinstance(m, nn.Conv2d) and 1 < m.groups == m.in_channels
                                        for _, m in layers])
        self.dense = int(self._macs.sum().item())
        self._roots = {g.root: i for i, g in enumerate(groups)}
        self._sizes = [g.size for g in groups]
        # One effect per (group, layer, side): layer channels removed per root channel of the group.
        self._effects: list[list[tuple[int, bool, torch.Tensor]]] = []
        for g in groups:
            effects = []
            for item in g.group:
                side = "out" if item.dep.handler in _OUT_FNS else "in" if item.dep.handler in _IN_FNS else None
                if side and item.dep.target.module in position:
                    per_root = torch.bincount(torch.tensor(item.root_idxs, dtype=torch.long), minlength=g.size)
                    effects.append((position[item.dep.target.module], side == "out", per_root.double()))
            self._effects.append(effects)
        self._ranked: tuple[torch.Tensor, ...] | None = None

    def macs(self, removed: Mapping[str, Sequence[int]]) -> float:
        """MACs with the listed channels of each group (by root layer) removed."""
        return self._total(*self._cuts(removed))

    def emptied(self, removed: Mapping[str, Sequence[int]]) -> str | None:
        """The first layer the listed channels leave without inputs or outputs, if any."""
        cut_out, cut_in = self._cuts(removed)
        empty = (cut_out >= self._out) | ((cut_in >= self._in) & ~self._depthwise)
        return self._names[int(empty.nonzero()[0])] if empty.any() else None

    def _cuts(self, removed: Mapping[str, Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        cut_out, cut_in = torch.zeros_like(self._macs), torch.zeros_like(self._macs)
        for root, idxs in removed.items():
            index = torch.tensor(list(idxs), dtype=torch.long)
            for layer, on_out, per_root in self._effects[self._roots[root]]:
                (cut_out if on_out else cut_in)[layer] += per_root[index].sum()
        return cut_out, cut_in

    def rank(self, order: Mapping[str, Sequence[int]]) -> None:
        """Fix the order in which each group's channels go, for ``macs_of_counts``."""
        effects = [(i, layer, on_out, per_root[torch.tensor(list(order[root]), dtype=torch.long)])
                   for root, i in self._roots.items() if root in order
                   for layer, on_out, per_root in self._effects[i]]
        cumulative = [torch.cat([torch.zeros(1, dtype=torch.float64), w.cumsum(0)]) for *_, w in effects]
        starts = torch.tensor([0] + [len(c) for c in cumulative[:-1]], dtype=torch.long).cumsum(0)
        self._ranked = (torch.tensor([e[0] for e in effects], dtype=torch.long),
                        torch.tensor([e[1] for e in effects], dtype=torch.long),
                        torch.tensor([e[2] for e in effects], dtype=torch.bool),
                        starts, torch.cat(cumulative) if cumulative else torch.zeros(0, dtype=torch.float64))

    def macs_of_counts(self, removed: Mapping[str, int]) -> float | None:
        """MACs with the first ``removed[root]`` channels of each group, in the order given to ``rank``, removed;
        None if that leaves a layer without input or output channels (a tensor that several groups feed, such as
        ShuffleNet's, can lose all its channels while every group keeps some)."""
        if self._ranked is None:
            raise RuntimeError("CostModel.rank() must fix the removal order first")
        group, layer, on_out, starts, cumulative = self._ranked
        counts = torch.zeros(len(self._roots), dtype=torch.long)
        for root, k in removed.items():
            counts[self._roots[root]] = k
        cut = cumulative[starts + counts[group]]
        cut_out = torch.zeros_like(self._macs).index_add_(0, layer[on_out], cut[on_out])
        cut_in = torch.zeros_like(self._macs).index_add_(0, layer[~on_out], cut[~on_out])
        if (cut_out >= self._out).any() or ((cut_in >= self._in) & ~self._depthwise).any():
            return None
        return self._total(cut_out, cut_in)

    def _total(self, cut_out: torch.Tensor, cut_in: torch.Tensor) -> float:
        out_frac = (1 - cut_out / self._out).clamp_min(0)
        in_frac = torch.where(self._depthwise, 1.0, (1 - cut_in / self._in).clamp_min(0))
        return float((self._macs * out_frac * in_frac).sum())


_OUT_FNS = {tp.prune_conv_out_channels, tp.prune_linear_out_channels, tp.prune_depthwise_conv_out_channels}
_IN_FNS = {tp.prune_conv_in_channels, tp.prune_linear_in_channels}


@dataclass(frozen=True)
class _Grid:
    """How one group's channels can go: in ``units`` (see ``ChannelGroup``) of ``width`` channels on average (equal
    in every architecture seen so far), keeping at least ``min_keep`` units and a multiple of ``multiple`` units."""

    units: Units
    width: float
    min_keep: int
    multiple: int

    def removable(self, n: int) -> int:
        """Units actually removed when ``n`` are asked for, after the minimum and the rounding of what is kept."""
        total = len(self.units)
        kept = total - min(n, total - self.min_keep)
        if self.multiple > 1:
            kept = max(self.multiple, int(round(kept / self.multiple)) * self.multiple)
        return total - min(total, max(kept, self.min_keep))


def _grids(scores: dict[str, torch.Tensor], units: Mapping[str, Units], min_keep: int,
           round_to: int) -> dict[str, _Grid]:
    grids = {}
    for root, s in scores.items():
        group_units = units.get(root) or [[c] for c in range(len(s))]
        widest = max(len(u) for u in group_units)
        grids[root] = _Grid(group_units, sum(map(len, group_units)) / len(group_units),
                            max(1, math.ceil(min_keep / widest)), math.lcm(widest, round_to) // widest)
    return grids


def _unit_scores(scores: dict[str, torch.Tensor], grids: dict[str, _Grid]) -> dict[str, torch.Tensor]:
    """One score per unit: the mean of its channels' scores (for grouped convolutions, as Torch-Pruning ranks)."""
    unit_scores = {}
    for r, s in scores.items():
        units = grids[r].units
        if all(len(u) == len(units[0]) for u in units):
            unit_scores[r] = s[torch.tensor(units)].mean(1)
        else:
            unit_scores[r] = torch.stack([s[u].mean() for u in units])
    return unit_scores


def _removal_order(scores: dict[str, torch.Tensor], mode: str) -> list[str]:
    """The root of each unit in the order a ranking removes them (lowest score first)."""
    roots = list(scores)
    if mode == "global":
        keys = torch.cat([scores[r] for r in roots])
    else:  # uniform: interleave groups by the fraction of each group removed so far
        keys = torch.cat([(torch.arange(len(scores[r])) + 1.0) / len(scores[r]) for r in roots])
    owner = torch.cat([torch.full((len(scores[r]),), i) for i, r in enumerate(roots)])
    return [roots[i] for i in owner[torch.argsort(keys, stable=True)].tolist()]


def _to_selection(units: dict[str, torch.Tensor], grids: dict[str, _Grid], counts: dict[str, int]) -> Selection:
    """Channel indices of the ``counts`` lowest-scored units of each group."""
    selection = {}
    for root, n in counts.items():
        remove = grids[root].removable(n)
        if remove > 0:
            selection[root] = sorted(_unit_channels(torch.argsort(units[root], stable=True)[:remove], grids[root]))
    return selection


def _unit_channels(positions: torch.Tensor, grid: _Grid) -> list[int]:
    """The channels of the units at ``positions``, unit by unit."""
    return [c for p in positions.tolist() for c in grid.units[p]]


def _ratio_counts(units: dict[str, torch.Tensor], grids: dict[str, _Grid], ratio: float,
                  mode: str) -> dict[str, int]:
    if mode == "uniform":
        return {root: int(ratio * len(s)) for root, s in units.items()}
    counts = dict.fromkeys(units, 0)
    budget = ratio * sum(len(g.units) * g.width for g in grids.values())
    for root in _removal_order(units, mode):
        grid = grids[root]
        if budget < grid.width:
            break
        if len(grid.units) - counts[root] > grid.min_keep:
            counts[root] += 1
            budget -= grid.width
    return counts


def _check_mode(mode: str) -> None:
    if mode not in SELECTIONS:
        raise choice_error("selection mode", mode, SELECTIONS)


def select_by_ratio(scores: dict[str, torch.Tensor], ratio: float, mode: str = "global", min_keep: int = 1,
                    round_to: int = 1, units: Mapping[str, Units] | None = None) -> Selection:
    """Remove ``ratio`` of all channels: lowest scores across groups (global) or within each group (uniform).

    No group keeps fewer than ``min_keep`` channels; kept counts are rounded to a multiple of ``round_to``.
    ``units`` (root -> channels that go together, see ``ChannelGroup``; default: one channel each).
    """
    if not 0 < ratio < 1:
        raise UsageError(f"ratio {ratio} is outside (0, 1)")
    _check_mode(mode)
    grids = _grids(scores, units or {}, min_keep, round_to)
    unit_scores = _unit_scores(scores, grids)
    return _to_selection(unit_scores, grids, _ratio_counts(unit_scores, grids, ratio, mode))


def select_by_target_macs(scores: dict[str, torch.Tensor], cost: CostModel, target: float, mode: str = "global",
                          min_keep: int = 1, round_to: int = 1,
                          units: Mapping[str, Units] | None = None) -> Selection:
    """Remove channels until the model has ``1/target`` of its dense MACs, within ±2 %.

    Bisects the channel ratio of ``select_by_ratio``. One channel of a wide, early residual stream can cost several
    percent of the MACs, so the last step may overshoot the tolerance: then the units that follow in the ranking
    are added one by one, in ranking order, skipping any that would overshoot, until the target is met.
    """
    if not target > 1:
        raise UsageError(f"target MACs reduction {target} must be > 1")
    _check_mode(mode)
    grids = _grids(scores, units or {}, min_keep, round_to)
    unit_scores = _unit_scores(scores, grids)
    order = {r: torch.argsort(u, stable=True) for r, u in unit_scores.items()}
    cost.rank({r: _unit_channels(order[r], grids[r]) for r in order})
    # channels removed with the first n units of each ranking
    channels = {r: [0, *itertools.accumulate(len(grids[r].units[p]) for p in order[r].tolist())] for r in order}

    def reduction(counts: dict[str, int]) -> float:
        """dense / pruned MACs; infinite (too much) when a layer would lose all its channels."""
        macs = cost.macs_of_counts({r: channels[r][grids[r].removable(n)] for r, n in counts.items()})
        return math.inf if macs is None else cost.dense / macs

    most = reduction({r: len(g.units) for r, g in grids.items()})
    if most < target * (1 - TARGET_TOLERANCE):
        raise UsageError(f"target MACs reduction {target} is unreachable with {mode} selection: at most "
                         f"{most:.2f}x while keeping {min_keep} channel(s) per layer")
    lo, hi = 0.0, 1.0 - 1e-9
    for _ in range(40):
        mid = (lo + hi) / 2
        if reduction(_ratio_counts(unit_scores, grids, mid, mode)) < target:
            lo = mid
        else:
            hi = mid
    counts = _ratio_counts(unit_scores, grids, lo, mode)
    taken = dict.fromkeys(unit_scores, 0)
    got = reduction(counts)
    for root in _removal_order(unit_scores, mode):
        if got > target * (1 - TARGET_TOLERANCE / 20):
            break
        taken[root] += 1
        if taken[root] <= counts[root] or len(grids[root].units) - counts[root] <= grids[root].min_keep:
            continue
        counts[root] += 1
        trial = reduction(counts)
        if trial > target:
            counts[root] -= 1
        else:
            got = trial
    if abs(got / target - 1) > TARGET_TOLERANCE:
        raise UsageError(f"target MACs reduction {target} cannot be met within ±2 % with {mode} selection "
                         f"(closest: {got:.3f}x); try another --round-to or target")
    return _to_selection(unit_scores, grids, counts)


def select_channels(model: nn.Module, example: torch.Tensor, settings: PruneSettings) -> Selection:
    """The suite's selection rule on ``model``'s weights, as ``settings`` asks: importance, global or uniform ranking,
    a global ratio or a target MACs reduction, minimum channels kept and rounding."""
    s = settings
    if (s.ratio is None) == (s.target_macs is None):
        raise UsageError("give exactly one of ratio (0 < R < 1) or target_macs (X > 1)")
    groups = channel_groups(model, example)
    scores = score_groups(groups, s.importance, s.seed)
    units = {g.root: g.units for g in groups}
    cost = CostModel(model, example, groups)
    if s.target_macs is not None:
        return select_by_target_macs(scores, cost, s.target_macs, s.selection, s.min_channels, s.round_to, units)
    selection = select_by_ratio(scores, s.ratio, s.selection, s.min_channels, s.round_to, units)
    emptied = cost.emptied(selection)
    if emptied:  # a tensor several groups feed (ShuffleNet's) can lose every channel while each group keeps some
        raise UsageError(f"ratio {s.ratio} would remove every channel of layer {emptied}; use a lower ratio or "
                         f"--target-macs")
    return selection
