"""L1: rank filters by L1 norm, remove them, fine-tune with labels.

Li, Kadav, Durdanovic, Samet, Graf, "Pruning Filters for Efficient ConvNets", ICLR 2017 (arXiv:1608.08710).

What the paper does: score each filter of a conv layer by the sum of its absolute kernel weights, remove the
lowest-scoring filters with per-layer ratios found by a sensitivity analysis (in ResNets only the first conv of each
residual block), then retrain with labels (constant learning rate 1e-3, 40 epochs on CIFAR-10; the PSP paper's
table quotes the method with 100 retraining epochs).

Choices made here (structured extension, same for every baseline of the suite):
- Selection is the suite's shared rule (``PruneContext.select``: dependency groups, global ranking, ratio or
  target MACs) with the importance forced to ``l1``: Torch-Pruning's ``MagnitudeImportance(p=1)``, the mean over
  the group's layers of the L1 norm tied to a channel (the filter itself, its BatchNorm scale, the consumers' input
  slices), divided by the group's mean. The paper's criterion is the filter's own L1 with per-layer ratios; a group
  mean is what makes channels tied by residual additions comparable under one global ranking.
- Fine-tuning is ``psp.train.train_model`` (SGD, Nesterov momentum 0.9, weight decay 5e-4, cosine schedule, crop
  augmentation) for ``settings.epochs`` epochs of ``settings.train_subset`` images at ``settings.finetune_lr``:
  a CPU-sized budget, far below the paper's.
- ``images_seen`` counts training images; ``epochs`` expresses them in epochs over the whole labeled split.

Own code (no Torch-Pruning pruner object): the shared selection and ``psp.structure.removal`` do the work.
"""

import copy

from baselines._common import select_with, split_epochs, train_labeled
from psp.methods import MethodResult, PruneContext, register_method
from psp.structure.removal import remove_channels

NAME = "l1"


@register_method(NAME, uses="labels", family="retraining", budget=("epochs",),
                 summary="Li et al. 2017: L1-norm filter ranking, removal, labeled fine-tuning")
def run_l1(ctx: PruneContext) -> MethodResult:
    selection = select_with(ctx, importance="l1")
    model = remove_channels(copy.deepcopy(ctx.model), selection, ctx.example)
    log, seen = train_labeled(model, ctx, NAME, ctx.settings.epochs, "finetune")
    return MethodResult(model, selection, images_seen=seen, epochs=split_epochs(ctx, seen),
                        tables={"train_log": log})
