"""GReg: a growing L2 penalty on the weights about to be removed, then removal and fine-tuning (GReg-1).

Wang, Qin, Zhang, Fu, "Neural Pruning via Growing Regularization", ICLR 2021 (arXiv:2012.09243); code followed:
github.com/MingSun-Tse/Regularization-Pruning (``pruner/reg_pruner.py``, method ``IncReg``;
``train_params/1_IncReg_resnet56_cifar10.yaml``).

What the release does (GReg-1): choose the filters to remove once (L1 norm, per-layer ratios); during training,
add ``λ · W`` to the gradient of those filters' weights, raising λ by 1e-4 every 5 iterations until it exceeds 1
(10⁴ increments: 5·10⁴ iterations at lr 1e-3), keep it for 5,000 more iterations ("stabilise"), remove the filters,
then fine-tune (120 epochs on CIFAR-10).

Compressed schedule (this module): λ rises linearly from 0 to ``settings.greg_ceiling`` over the T steps of
``settings.reg_epochs`` epochs, λ_t = ceiling · t / T. This squeezes the release's staircase (+1e-4 every 5
iterations, 5·10⁴ iterations to reach 1) into T steps: the increment becomes ceiling / T per step and the ceiling
is reached at the last step. The stabilisation phase is folded into fine-tuning. Then the selected channels are
removed and the model is fine-tuned for ``settings.epochs`` epochs. With a CPU-sized T the selected weights shrink
far less than in the release (``extra.greg_selected_norm_ratio`` reports their norm after / before).

Choices where the paper is silent or the suite differs:
- The channels are chosen once, by the shared rule (``PruneContext.select``: dependency groups, importance,
  global ranking, ratio or target MACs), before regularising, and are the ones removed (GReg-1 does not re-rank).
  The release uses per-layer L1 ranking; ``--importance l1`` gets closer to it.
- Structured extension: the penalty covers every weight tied to a selected channel — the filters (output rows),
  the following BatchNorm scales and the consumers' input columns (``psp.structure.removal.selected_slices``), as
  Torch-Pruning's ``GrowingRegPruner.regularize`` does for a group (its BatchNorm branch is a no-op in 1.6.1: it
  adds to an indexed copy of the gradient); the release penalises the filters only. With the consumers' columns
  driven to zero, removal changes the output little even when a BatchNorm shift remains.
- Training is ``psp.train.train_model`` (SGD, momentum 0.9, weight decay 5e-4, cosine schedule per phase,
  ``finetune_lr``, ``train_subset`` images per epoch, batch 128); the penalty enters through its gradient hook,
  between backward and the step. The release holds lr at 1e-3 during regularisation; here the cosine schedule
  runs within the regularisation phase too.
- ``images_seen`` counts training images of both phases; ``epochs`` expresses them in epochs over the labeled split.

Own code; its penalty is cross-checked against ``tp.pruner.GrowingRegPruner.regularize`` on conv and linear
weights (``tests/test_baselines.py``).
"""

import copy

import torch

from baselines._common import split_epochs, steps_per_epoch, train_budget, train_labeled
from psp.methods import MethodResult, PruneContext, register_method
from psp.reconstruct.penalty import Slice, penalise_gradients
from psp.structure.removal import remove_channels, selected_slices

NAME = "greg"


class GrowingPenalty:
    """The gradient hook: adds ``λ_t · W`` to the gradient of every selected slice, λ_t = ceiling · t / total."""

    def __init__(self, slices: list[Slice], ceiling: float, total_steps: int, steps_per_epoch: int) -> None:
        self.slices, self.ceiling = slices, ceiling
        self.total, self.per_epoch = max(total_steps, 1), steps_per_epoch
        self.strength = 0.0

    def __call__(self, model: torch.nn.Module, epoch: int, step: int) -> None:
        self.strength = self.ceiling * min(epoch * self.per_epoch + step + 1, self.total) / self.total
        penalise_gradients(self.slices, "add", self.strength, lr=0.0)


def _norm(slices: list[Slice]) -> float:
    return sum(w.detach().index_select(d, i).pow(2).sum().item() for w, d, i in slices) ** 0.5


@register_method(NAME, uses="labels", family="retraining", budget=("reg_epochs", "epochs"),
                 summary="Wang et al. 2021: growing L2 penalty on the selected channels, removal, fine-tuning")
def run_greg(ctx: PruneContext) -> MethodResult:
    s = ctx.settings
    model = copy.deepcopy(ctx.model).eval()
    selection = ctx.select(model)
    slices = list(selected_slices(model, selection, ctx.example))
    per_epoch = steps_per_epoch(ctx, train_budget(ctx, NAME, s.reg_epochs), NAME)
    penalty = GrowingPenalty(slices, s.greg_ceiling, s.reg_epochs * per_epoch, per_epoch)
    norm_before = _norm(slices)
    log, seen = train_labeled(model, ctx, NAME, s.reg_epochs, "regularise", hook=penalty)
    norm_after = _norm(slices)
    remove_channels(model, selection, ctx.example)
    finetune_log, finetune_seen = train_labeled(model, ctx, NAME, s.epochs, "finetune")
    seen += finetune_seen
    return MethodResult(model, selection, images_seen=seen, epochs=split_epochs(ctx, seen),
                        tables={"train_log": log + finetune_log},
                        extra={"greg_final_penalty": penalty.strength,
                               "greg_selected_norm_ratio": norm_after / max(norm_before, 1e-12)})
