"""DepGraph: group-level sparse learning over whole dependency groups, removal by group norm, fine-tuning.

Fang, Ma, Song, Mi, Wang, "DepGraph: Towards Any Structural Pruning", CVPR 2023 (arXiv:2301.12900); code followed:
Torch-Pruning 1.6.1 (``tp.pruner.GroupNormPruner``, the pruner its ``reproduce/main.py`` uses for ``group_sl``,
with ``--global-pruning --reg 5e-4`` on CIFAR).

What the release does: train with labels while, after every backward pass, ``GroupNormPruner.regularize`` adds
``reg · γ_c · W`` to the gradient of every weight tied to channel c of every group (conv/linear output rows and input
columns, BatchNorm scales), with ``γ_c = 16^((I_max − I_c)/(I_max − I_min))`` from the square root of the current
group importance I (Torch-Pruning's ``GroupMagnitudeImportance(p=2)``): the least important channels of a group are
pushed 16 times harder than the most important. Then prune globally by the same group L2 importance to the target
speed-up, and fine-tune.

This module:
- Sparse learning reuses Torch-Pruning's ``GroupNormPruner.regularize`` unchanged (built with the suite's custom
  pruning rules, the classifier ignored), with ``reg = settings.group_lasso``, for ``settings.reg_epochs`` epochs
  of ``psp.train.train_model`` (its gradient hook). The release trains 100 epochs here; this is a CPU-sized budget.
- Selection is the suite's shared rule on the regularised weights with the importance forced to ``l2``:
  ``MagnitudeImportance(p=2)`` with its defaults is exactly the group L2 importance DepGraph ranks by (mean over the
  group's layers, normalised by the group mean), ranked globally; ``--target-macs`` replaces the release's
  progressive pruning to a speed-up.
- Fine-tuning: ``settings.epochs`` epochs at ``settings.finetune_lr`` on ``settings.train_subset`` images
  (SGD, momentum 0.9, weight decay 5e-4, cosine); the release fine-tunes 100 epochs.
- ``images_seen`` counts training images of both phases; ``epochs`` expresses them in epochs over the labeled split.
"""

import copy

import torch
import torch_pruning as tp
from torch import nn

from baselines._common import select_with, split_epochs, train_labeled
from psp.methods import MethodResult, PruneContext, register_method
from psp.structure.groups import output_layer
from psp.structure.removal import remove_channels
from psp.structure.rules import CUSTOM_PRUNERS

NAME = "depgraph"


def group_norm_regulariser(model: nn.Module, example: torch.Tensor, strength: float) -> tp.pruner.GroupNormPruner:
    """Torch-Pruning's DepGraph sparse-learning pruner on ``model`` (traced in eval mode; nothing is pruned)."""
    was_training = model.training
    pruner = tp.pruner.GroupNormPruner(model, example[:1], importance=tp.importance.GroupMagnitudeImportance(p=2),
                                       reg=strength, global_pruning=True,
                                       ignored_layers=[output_layer(model, example)],
                                       customized_pruners=CUSTOM_PRUNERS)
    model.train(was_training)
    return pruner


@register_method(NAME, uses="labels", family="retraining", budget=("reg_epochs", "epochs"),
                 summary="Fang et al. 2023: group-norm sparse learning, global group-L2 removal, fine-tuning")
def run_depgraph(ctx: PruneContext) -> MethodResult:
    s = ctx.settings
    model = copy.deepcopy(ctx.model).eval()
    log, seen = [], 0
    if s.reg_epochs > 0 and s.group_lasso > 0:
        pruner = group_norm_regulariser(model, ctx.example, s.group_lasso)
        log, seen = train_labeled(model, ctx, NAME, s.reg_epochs, "sparse_learning",
                                  hook=lambda m, epoch, step: pruner.regularize(m))
    selection = select_with(ctx, model, importance="l2")
    remove_channels(model, selection, ctx.example)
    finetune_log, finetune_seen = train_labeled(model, ctx, NAME, s.epochs, "finetune")
    seen += finetune_seen
    return MethodResult(model, selection, images_seen=seen, epochs=split_epochs(ctx, seen),
                        tables={"train_log": log + finetune_log})
