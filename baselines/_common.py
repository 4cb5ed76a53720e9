"""Helpers shared by the baselines: labeled training budgets, layer inputs and outputs, layer-wise reconstruction.

Private to ``baselines``; the suite-wide pieces (selection, removal, training loop) live in ``psp``.
"""

import contextlib
import math
from dataclasses import replace

import torch
from torch import nn
from torch.utils.data import Dataset

from psp.errors import UsageError
from psp.methods import PruneContext
from psp.settings import PruneSettings
from psp.structure.removal import kept_outputs, selected_slices
from psp.structure.selection import Selection
from psp.train import GradientHook, NonFiniteLoss, TrainSettings, train_model

LAYER_TYPES = (nn.Conv2d, nn.Linear)
NEGLIGIBLE = 1e-10  # a relative error this small is float rounding: the layer already reproduces its target


# --- Labeled training (L1, GReg, DepGraph) -------------------------------------------------------------------------


def labeled_split(ctx: PruneContext, method: str) -> Dataset:
    """The labeled training split, or a clear error when the method was given none."""
    if ctx.data is None:
        raise UsageError(f"method {method!r} retrains with labels but was given no labeled training split")
    return ctx.data.train


def train_budget(ctx: PruneContext, method: str, epochs: int) -> TrainSettings:
    """SGD settings of the retraining baselines: ``finetune_lr``, ``train_subset`` images per epoch.

    The subset is capped at the split's size, so that the step count (and with it the cosine schedule) matches the
    images actually drawn.
    """
    n = len(labeled_split(ctx, method))
    subset = min(ctx.settings.train_subset, n) if ctx.settings.train_subset else None
    return TrainSettings(epochs=epochs, lr=ctx.settings.finetune_lr, subset=subset, amp=ctx.settings.amp)


def steps_per_epoch(ctx: PruneContext, budget: TrainSettings, method: str) -> int:
    return math.ceil((budget.subset or len(labeled_split(ctx, method))) / budget.batch_size)


def train_labeled(model: nn.Module, ctx: PruneContext, method: str, epochs: int, phase: str,
                  hook: GradientHook | None = None) -> tuple[list[dict], int]:
    """Train ``model`` in place for ``epochs`` on the labeled split; returns (log rows, images seen).

    The model is left in eval mode.
    """
    if epochs <= 0:
        return [], 0
    budget = train_budget(ctx, method, epochs)
    train = labeled_split(ctx, method)
    history = train_model(model, train, ctx.normalize, budget, ctx.settings.seed, ctx.device,
                          what=f"{method} {phase}", gradient_hook=hook)
    model.eval()
    rows = [{"phase": phase, **row} for row in history]
    return rows, epochs * (budget.subset or len(train))


def split_epochs(ctx: PruneContext, images_seen: int) -> float:
    """Images seen, in epochs over the whole labeled split (a subset epoch counts as a fraction)."""
    return images_seen / max(len(ctx.data.train), 1) if ctx.data is not None else 0.0


def select_with(ctx: PruneContext, model: nn.Module | None = None, **overrides: object) -> Selection:
    """The shared selection rule with some settings overridden (a method's own importance, say)."""
    settings: PruneSettings = replace(ctx.settings, **overrides)
    return replace(ctx, settings=settings).select(model)


# --- Layer inputs, outputs and reconstruction (AdaPrune, gAP) ------------------------------------------------------


def kept_inputs(model: nn.Module, selection: Selection, example: torch.Tensor) -> dict[str, torch.Tensor]:
    """For each conv and linear layer of the unpruned ``model`` whose inputs a selection shrinks, the original
    indices of the input channels that survive (the columns the pruned layer still reads)."""
    names = {id(m.weight): n for n, m in model.named_modules() if isinstance(m, LAYER_TYPES)}
    removed: dict[str, set[int]] = {}
    for weight, dim, idx in selected_slices(model, selection, example):
        if dim == 1 and id(weight) in names:
            removed.setdefault(names[id(weight)], set()).update(idx.tolist())
    kept = {}
    for name, gone in removed.items():
        width = model.get_submodule(name).weight.shape[1]
        kept[name] = torch.tensor([c for c in range(width) if c not in gone], dtype=torch.long)
    # A depthwise conv reads exactly the channels it outputs (Torch-Pruning ties its input to its output).
    for name, keep in kept_outputs(model, selection, example).items():
        layer = model.get_submodule(name)
        if isinstance(layer, nn.Conv2d) and layer.groups > 1 and layer.groups == layer.in_channels:
            kept[name] = keep
    return kept


class _Stop(Exception):
    """Raised by a forward hook once the layer of interest has run: the rest of the forward pass is skipped."""


@torch.no_grad()
def layer_io(model: nn.Module, name: str, images: torch.Tensor, batch_size: int
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """The input and the output of layer ``name`` of ``model`` (as it is, in its current mode) for ``images``.

    Each forward pass stops right after that layer.
    """
    inputs: list[torch.Tensor] = []
    outputs: list[torch.Tensor] = []

    def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        inputs.append(args[0].detach())
        outputs.append(output.detach())
        raise _Stop

    handle = model.get_submodule(name).register_forward_hook(hook)
    try:
        for start in range(0, len(images), batch_size):
            with contextlib.suppress(_Stop):
                model(images[start:start + batch_size])
    finally:
        handle.remove()
    return torch.cat(inputs), torch.cat(outputs)


def restrict(tensor: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    """Channels ``keep`` of a ``(N, C, ...)`` tensor (all of them when ``keep`` is None)."""
    return tensor if keep is None else tensor.index_select(1, keep.to(tensor.device))


@torch.no_grad()
def relative_error(layer: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, batch_size: int) -> float:
    """``||layer(inputs) - targets||² / ||targets||²`` over the whole set."""
    err = norm = 0.0
    for start in range(0, len(inputs), batch_size):
        target = targets[start:start + batch_size]
        err += (layer(inputs[start:start + batch_size]) - target).pow(2).sum().item()
        norm += target.pow(2).sum().item()
    return err / max(norm, 1e-12)


def fit_layer(layer: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, settings: PruneSettings, seed: int,
              what: str) -> tuple[float, float]:
    """AdaPrune's layer step: Adam on the layer's weight so that ``layer(inputs)`` reproduces ``targets``.

    The loss of a batch is its squared error divided by its targets' squared norm (as in the released AdaPrune
    code); ``settings.layer_epochs`` passes of ``settings.batch_size``, learning rate ``settings.lr``. Only the
    weight is trained (the released code leaves biases alone). Returns the relative error over the whole set
    before and after.
    """
    before = relative_error(layer, inputs, targets, settings.batch_size)
    if before < NEGLIGIBLE or settings.layer_epochs <= 0:
        return before, before
    optimizer = torch.optim.Adam([layer.weight], lr=settings.lr)
    generator = torch.Generator().manual_seed(seed)
    with torch.enable_grad():
        for _ in range(settings.layer_epochs):
            order = torch.randperm(len(inputs), generator=generator).to(inputs.device)
            for start in range(0, len(inputs), settings.batch_size):
                idx = order[start:start + settings.batch_size]
                target = targets[idx]
                loss = (layer(inputs[idx]) - target).pow(2).sum() / target.pow(2).sum().clamp_min(1e-12)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
    after = relative_error(layer, inputs, targets, settings.batch_size)
    if not math.isfinite(after):
        raise NonFiniteLoss(f"{what}: layer reconstruction error became {after}")
    return before, after
