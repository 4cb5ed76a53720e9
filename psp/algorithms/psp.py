"""PSP: post-training structured pruning without retraining (the suite's reference implementation).

Select channels (importance ``l2``, global, ratio or target MACs); phase 1 trains a full-size copy to reproduce the
original model's output at every conv, linear and BatchNorm layer while a growing penalty drives the selected
channels' weights to zero; rank again on the phase-1 weights; remove; phase 2 reconstructs the kept channels with
balanced per-layer learning rates. Every behaviour of the released code is a setting with that behaviour as its
default (``psp.settings``); the ablations are registered variants. Labels are never read.

Speed (the released code's computation): the original model's layer outputs for the calibration images are computed
once and reused by both phases when they fit ``--cache-mib`` (they never change: no augmentation); the loss is summed
in forward hooks as each output is made, each term adding its gradient to the later layers' in one pass
(``psp.reconstruct.loss``). On CPU, each phase runs in the layout measured faster for its model (``--memory-format``,
``psp.reconstruct.layout``): channels-last when the model's widths come in blocks of 16, kept for its pruned model,
whose odd widths' BatchNorms are folded into such blocks (``psp.reconstruct.folded_batchnorm``); in NCHW, same
convolutions' input gradients are computed as forward convolutions (``--conv-input-grad``,
``psp.reconstruct.conv_grad``). These change only the order of sums inside kernels; the pruned model is handed back
NCHW.
"""

import copy
import logging
import math
import time
from collections.abc import Callable

import torch
from torch import nn

from psp.methods import MethodResult, PruneContext, register_method, with_settings
from psp.reconstruct import conv_grad, layout
from psp.reconstruct.batchnorm import recalibrate_batchnorm
from psp.reconstruct.folded_batchnorm import folded_batchnorms
from psp.reconstruct.loss import HolisticLoss
from psp.reconstruct.optim import phase_schedule, reconstruction_optimizer
from psp.reconstruct.penalty import decay_weights, penalise_gradients
from psp.reconstruct.taps import reconstruction_layers
from psp.reconstruct.targets import TargetStore
from psp.settings import PruneSettings
from psp.structure.removal import kept_outputs, remove_channels, selected_slices
from psp.train import NonFiniteLoss

log = logging.getLogger(__name__)


def _reconstruct(model: nn.Module, store: TargetStore, images: torch.Tensor, layers: list[str],
                 optimizer: torch.optim.Optimizer, epochs: int, settings: PruneSettings, phase: int,
                 penalty: list | None = None) -> list[dict]:
    """Epochs of holistic reconstruction; with ``penalty`` slices, phase 1's growing sparsity penalty too."""
    model.train(settings.bn_mode == "train")
    generator = torch.Generator().manual_seed(settings.seed * 100 + phase)
    shape = "cosine" if settings.lr_schedule == "cosine" or (settings.lr_schedule == "phase2_cosine" and phase == 2) \
        else "constant"
    schedule = phase_schedule(optimizer, shape, epochs * math.ceil(len(images) / settings.batch_size))
    rows = []
    for epoch in range(epochs):
        strength = settings.reg + epoch * settings.reg_growth
        order = torch.randperm(len(images), generator=generator).to(images.device)
        total, start_time = 0.0, time.perf_counter()
        for start in range(0, len(images), settings.batch_size):
            idx = order[start:start + settings.batch_size]
            with HolisticLoss(model, layers, store.batch(idx)) as terms:
                model(images[idx])
            loss = terms.total()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if penalty:
                penalise_gradients(penalty, settings.penalty, strength, settings.lr)
            optimizer.step()
            schedule.step()
            if penalty and settings.penalty == "decay":
                decay_weights(penalty, strength)
            total += loss.item() * len(idx)
        mean = total / len(images)
        if not math.isfinite(mean):
            raise NonFiniteLoss(f"psp: reconstruction loss became {mean} in phase {phase}, epoch {epoch + 1}")
        rows.append({"phase": phase, "epoch": epoch + 1, "loss": mean,
                     "seconds": time.perf_counter() - start_time})
        log.info("psp phase %d epoch %d/%d: loss %.4f (%.1f s)", phase, epoch + 1, epochs, mean, rows[-1]["seconds"])
    return rows


def _weight_change(before: dict[str, torch.Tensor], model: nn.Module) -> list[dict]:
    rows = []
    for i, (name, w0) in enumerate(before.items()):
        w1 = model.get_submodule(name).weight.detach()
        rows.append({"layer_index": i, "layer": name,
                     "relative_change": ((w1 - w0).norm() / w0.norm().clamp_min(1e-12)).item()})
    return rows


def run_psp(ctx: PruneContext) -> MethodResult:
    s = ctx.settings
    fmt = layout.resolve_memory_format(s.memory_format, torch.device(ctx.device), ctx.model)
    images = ctx.calibration().to(ctx.device)
    with layout.laid_out(ctx.model.eval(), fmt) as original:
        result = _run_psp(ctx, original, images, fmt)
    model = layout.to_memory_format(result.model, "contiguous")
    if s.bn_recalibrate:  # in the layout the model is handed back in: re-estimating them again changes nothing
        result.images_seen += recalibrate_batchnorm(model, images, s.batch_size)
    model.eval()
    result.extra["memory_format"] = fmt
    return result


def _run_psp(ctx: PruneContext, original: nn.Module, images: torch.Tensor, fmt: str) -> MethodResult:
    """Both phases and the removal between them, both in layout ``fmt`` (``original``'s), each with the BatchNorms
    it folds counted."""
    s = ctx.settings
    device = torch.device(ctx.device)
    grad = conv_grad.resolve_conv_input_grad(s.conv_input_grad, device, fmt)
    layers = reconstruction_layers(original)
    cache_bytes = s.cache_mib * 2**20 if s.cache_targets else 0
    selection = ctx.select()
    model = copy.deepcopy(original)
    losses: list[dict] = []
    store = None
    folded = rec_folded = []
    if s.penalty_epochs > 0:
        laid = layout.to_layout(images, fmt)
        store = TargetStore(original, laid, layers, cache_bytes, s.batch_size)
        slices = list(selected_slices(model, selection, ctx.example))
        optimizer = torch.optim.Adam(model.parameters(), lr=s.lr)
        with conv_grad.input_gradients(model, grad), folded_batchnorms(model, fmt, device) as folded:
            losses += _reconstruct(model, store, laid, layers, optimizer, s.penalty_epochs, s, 1, penalty=slices)
        if s.reselect:
            model.eval()
            selection = ctx.select(model)
    keep = kept_outputs(model, selection, ctx.example)
    remove_channels(model, selection, ctx.example)
    rec_fmt = fmt  # the pruned model keeps the layout: channels-last with its odd widths' BatchNorms folded
    rec_grad = conv_grad.resolve_conv_input_grad(s.conv_input_grad, device, rec_fmt)
    layout.to_memory_format(model, rec_fmt)  # removal makes new weights, NCHW
    convs = [n for n in layers if isinstance(model.get_submodule(n), (nn.Conv2d, nn.Linear))]
    before = {n: model.get_submodule(n).weight.detach().clone() for n in convs}
    if s.rec_epochs > 0:
        # Restricting drops the full-width cache, so memory stays bounded; without phase 1 the surviving channels are
        # known before any target is computed, and only those are.
        store = store.restrict(keep, rec_fmt) if store else TargetStore(
            original, layout.to_layout(images, fmt), layers, cache_bytes, s.batch_size, keep, rec_fmt)
        optimizer = reconstruction_optimizer(model, layers, s.lr, s.balanced, s.balance_power)
        with conv_grad.input_gradients(model, rec_grad), folded_batchnorms(model, rec_fmt, device) as rec_folded:
            losses += _reconstruct(model, store, layout.to_layout(images, rec_fmt), layers, optimizer, s.rec_epochs,
                                   s, 2)
    return MethodResult(model, selection, images_seen=len(images) * (s.penalty_epochs + s.rec_epochs),
                        tables={"losses": losses, "weight_change": _weight_change(before, model)},
                        extra={"cached_targets": store is not None and store.cached is not None,
                               "fused_residual": store is not None and store.fused,
                               "conv_input_grad": grad, "rec_memory_format": rec_fmt,
                               "rec_conv_input_grad": rec_grad, "folded_batchnorms": len(folded),
                               "rec_folded_batchnorms": len(rec_folded)})


# What a budget ladder scales: both phases' epochs (a variant that drops a phase keeps it at 0).
PSP_BUDGET = ("penalty_epochs", "rec_epochs")


def _register(name: str, summary: str, run: Callable[[PruneContext], MethodResult] = run_psp) -> None:
    register_method(name, uses="calibration", family="PSP", budget=PSP_BUDGET, summary=summary)(run)


# PSP and its ablations, in the ablation table's order; the summaries are that table's "what it is" column.
_register("psp", "PSP (penalty, removal, balanced reconstruction)")
_register("psp_no_penalty", "without phase 1 (sparsity penalty)", with_settings(run_psp, penalty_epochs=0))
_register("psp_no_balance", "one learning rate for all layers", with_settings(run_psp, balanced=False))
_register("psp_no_rec", "without phase-2 reconstruction", with_settings(run_psp, rec_epochs=0))
_register("psp_random", "random channel importance (Q4)", with_settings(run_psp, importance="random"))
