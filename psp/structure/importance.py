"""Channel importance per dependency group.

``l2`` is exactly what the released PSP code computes: Torch-Pruning's ``MagnitudeImportance(p=2)`` with its
defaults. For channel c of a group, each conv/linear/BN layer contributes the sum of its squared weights tied to c
(output filter, consumer input slice, BN scale); the group score is the mean over those layers, divided by the mean
score of the group's channels. ``l1`` is the same with p=1, ``l2_sum`` sums over layers without normalising, and
``random`` is a seeded control.
"""

import torch

from psp.errors import choice_error
from psp.options import IMPORTANCES
from psp.structure.groups import ChannelGroup
from psp.structure.tp import tp


def make_importance(name: str) -> tp.importance.Importance | None:
    if name == "l2":
        return tp.importance.MagnitudeImportance(p=2)
    if name == "l1":
        return tp.importance.MagnitudeImportance(p=1)
    if name == "l2_sum":
        return tp.importance.MagnitudeImportance(p=2, group_reduction="sum", normalizer=None)
    if name == "random":
        return None
    raise choice_error("importance", name, IMPORTANCES)


def score_groups(groups: list[ChannelGroup], name: str = "l2", seed: int = 0) -> dict[str, torch.Tensor]:
    """One score per channel for every group (higher = more important), keyed by the group's root layer."""
    criterion = make_importance(name)
    generator = torch.Generator().manual_seed(seed)
    scores = {}
    for g in groups:
        if criterion is None:
            scores[g.root] = torch.rand(g.size, generator=generator)
            continue
        s = criterion(g.group)
        scores[g.root] = (torch.ones(g.size) if s is None else s.detach().float().cpu())
    return scores
