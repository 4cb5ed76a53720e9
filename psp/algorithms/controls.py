"""Controls that isolate what recovery adds.

- ``oneshot``: selection alone; ``oneshot_bn``: selection plus BatchNorm re-estimation; ``oneshot_bn_random``: the
  same with random importance (the yardstick of Q4: how much does the criterion matter without reconstruction?);
  ``dense_bn``: the unpruned model with re-estimated BatchNorm (on JPEG CIFAR the dense model itself gains from
  adapting BN to the domain).
- ``oneshot_kd`` (Q2): select and remove as PSP does, then train the pruned model to reproduce the dense model's
  *logits only* on the same calibration images, with PSP's optimiser (Adam over every parameter at ``lr``), batch
  size, BN mode and total epochs (``penalty_epochs + rec_epochs``). The default loss is PSP's own normalised squared
  error ``||z' − z||² / ||z||²`` applied to the output layer alone, so the only difference from PSP's recovery is
  which layers are matched (and no penalty phase); ``--distill-loss kl`` gives Hinton-style KL at temperature 1.
  One learning rate for every layer: balanced rates exist to offset the sum of per-layer losses flowing into early
  layers, which an output-only loss does not have.
- ``oneshot_ft`` (Q3): the same selection and removal, then supervised cross-entropy on exactly the calibration
  images and their labels, with the same optimiser, batch size, BN mode and epochs. No augmentation, as in PSP.
"""

import copy
import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from psp.errors import UsageError
from psp.methods import MethodResult, PruneContext, register_method, with_bn_recalibration, with_settings
from psp.reconstruct.batchnorm import recalibrate_batchnorm
from psp.settings import PruneSettings
from psp.structure.removal import remove_channels
from psp.train import NonFiniteLoss

BatchLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (model output, batch indices) -> loss


def oneshot(ctx: PruneContext) -> MethodResult:
    selection = ctx.select()
    return MethodResult(remove_channels(copy.deepcopy(ctx.model), selection, ctx.example), selection)


def dense_bn(ctx: PruneContext) -> MethodResult:
    model = copy.deepcopy(ctx.model)
    seen = recalibrate_batchnorm(model, ctx.calibration(), ctx.settings.batch_size)
    return MethodResult(model, {}, images_seen=seen)


RECOVERY_BUDGET = ("penalty_epochs", "rec_epochs")  # what a budget ladder scales: PSP's, the epochs they sum to


def recovery_epochs(settings: PruneSettings) -> int:
    """PSP's total epochs (phase 1 + phase 2): the budget every recovery control gets."""
    return settings.penalty_epochs + settings.rec_epochs


def fit_on_calibration(model: nn.Module, images: torch.Tensor, batch_loss: BatchLoss, settings: PruneSettings,
                       what: str) -> list[dict]:
    """Train ``model`` in place on the calibration images with PSP's optimiser and schedule; one row per epoch.

    The model is left in eval mode.
    """
    model.train(settings.bn_mode == "train")
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    generator = torch.Generator().manual_seed(settings.seed * 100 + 2)
    rows = []
    for epoch in range(recovery_epochs(settings)):
        order = torch.randperm(len(images), generator=generator).to(images.device)
        total = 0.0
        for start in range(0, len(images), settings.batch_size):
            idx = order[start:start + settings.batch_size]
            loss = batch_loss(model(images[idx]), idx)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        mean = total / len(images)
        if not math.isfinite(mean):
            raise NonFiniteLoss(f"{what}: loss became {mean} in epoch {epoch + 1}")
        rows.append({"epoch": epoch + 1, "loss": mean})
    model.eval()
    return rows


@torch.no_grad()
def _logits(model: nn.Module, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    return torch.cat([model(images[start:start + batch_size]) for start in range(0, len(images), batch_size)])


def distillation_loss(kind: str, teacher: torch.Tensor) -> BatchLoss:
    """The output-only loss against the dense model's logits ``teacher`` (indexed by batch)."""

    def mse(out: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        target = teacher[idx]
        return F.mse_loss(out, target, reduction="sum") / target.pow(2).sum().clamp_min(1e-12)

    def kl(out: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return F.kl_div(F.log_softmax(out, 1), F.log_softmax(teacher[idx], 1), log_target=True,
                        reduction="batchmean")

    return {"mse": mse, "kl": kl}[kind]


def oneshot_kd(ctx: PruneContext) -> MethodResult:
    s = ctx.settings
    images = ctx.calibration().to(ctx.device)
    teacher = _logits(ctx.model.eval(), images, s.batch_size)
    selection = ctx.select()
    model = remove_channels(copy.deepcopy(ctx.model), selection, ctx.example)
    rows = fit_on_calibration(model, images, distillation_loss(s.distill_loss, teacher), s, "oneshot_kd")
    return MethodResult(model, selection, images_seen=len(images) * recovery_epochs(s), tables={"losses": rows},
                        extra={"distill_loss": s.distill_loss})


def oneshot_ft(ctx: PruneContext) -> MethodResult:
    s = ctx.settings
    if ctx.calibration_labels is None:
        raise UsageError("method 'oneshot_ft' fine-tunes on the calibration images' labels but was given none")
    images = ctx.calibration().to(ctx.device)
    labels = ctx.calibration_labels().to(ctx.device)
    selection = ctx.select()
    model = remove_channels(copy.deepcopy(ctx.model), selection, ctx.example)
    rows = fit_on_calibration(model, images, lambda out, idx: F.cross_entropy(out, labels[idx]), s, "oneshot_ft")
    seen = len(images) * recovery_epochs(s)
    epochs = seen / len(ctx.data.train) if ctx.data is not None else 0.0  # in epochs over the labeled split
    return MethodResult(model, selection, images_seen=seen, epochs=epochs, tables={"losses": rows})


# The controls, each beside what it explains, in the ablation table's order; the summaries are that table's
# "what it is" column.
register_method("oneshot_kd", uses="calibration", family="control", budget=RECOVERY_BUDGET,
                summary="selection, removal, distillation of the logits only (Q2)")(oneshot_kd)
register_method("oneshot_ft", uses="labels", family="control", budget=RECOVERY_BUDGET,
                summary="selection, removal, fine-tuning with the images' labels (Q3)")(oneshot_ft)
register_method("oneshot", uses="none", family="control", summary="selection and removal only")(oneshot)
register_method("oneshot_bn", uses="calibration", family="control", traits=("bn-recalibrated",),
                summary="selection, removal, BatchNorm re-estimated")(with_bn_recalibration(oneshot))
register_method("oneshot_bn_random", uses="calibration", family="control", traits=("bn-recalibrated",),
                summary="as oneshot_bn with random importance (Q4)")(
    with_bn_recalibration(with_settings(oneshot, importance="random")))
register_method("dense_bn", uses="calibration", family="control", traits=("bn-recalibrated",),
                summary="unpruned, BatchNorm re-estimated")(dense_bn)
