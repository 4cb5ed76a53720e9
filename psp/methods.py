"""What a method is given and what it returns: ``PruneContext``, ``MethodResult``, and the wrappers that derive a
registered variant (fixed settings, BatchNorm re-estimation).

A method is a function ``run(ctx: PruneContext) -> MethodResult`` registered with ``@register_method``
(``psp.registry``; re-exported here, so that a method module imports one place).
"""

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from psp.data.datasets import DataBundle
from psp.reconstruct.batchnorm import recalibrate_batchnorm
from psp.registry import Method, get_method, list_methods, load_method_modules, register_method
from psp.settings import PruneSettings
from psp.structure.selection import Selection, select_channels

__all__ = ["Method", "MethodResult", "PruneContext", "Run", "get_method", "list_methods", "load_method_modules",
           "register_method", "with_bn_recalibration", "with_settings"]


@dataclass
class PruneContext:
    """Everything a method may use. ``calibration()`` returns the unlabeled images; ``data`` and
    ``calibration_labels()`` (the labels of exactly those images, for equal-data labeled controls) are for ``labels``
    methods only."""

    model: nn.Module  # the dense model, eval mode, on ``device``; methods must not modify it
    example: torch.Tensor  # one input of the right shape, on ``device``
    settings: PruneSettings
    device: torch.device
    normalize: tuple[torch.Tensor, torch.Tensor]
    calibration: Callable[[], torch.Tensor]
    data: DataBundle | None = None
    calibration_labels: Callable[[], torch.Tensor] | None = None

    def select(self, model: nn.Module | None = None) -> Selection:
        """The shared selection rule (importance, global/uniform, ratio or target MACs) on ``model``'s weights."""
        return select_channels(model if model is not None else self.model, self.example, self.settings)


@dataclass
class MethodResult:
    model: nn.Module
    selection: Selection
    images_seen: int = 0  # images processed by the method (calibration passes or training images)
    epochs: float = 0  # training epochs over the labeled split (retraining methods)
    tables: dict[str, list[dict]] = field(default_factory=dict)  # extra CSVs, name -> rows
    extra: dict = field(default_factory=dict)  # extra metrics.json fields


Run = Callable[[PruneContext], MethodResult]


def with_settings(run: Run, **overrides: object) -> Run:
    """``run`` with some settings fixed (a registered variant such as ``psp_random``); the overrides are recorded."""

    def variant(ctx: PruneContext) -> MethodResult:
        result = run(replace(ctx, settings=replace(ctx.settings, **overrides)))
        result.extra["overrides"] = overrides
        return result

    return variant


def with_bn_recalibration(run: Run) -> Run:
    """``run``, then BatchNorm statistics re-estimated on the same calibration images (the "+BN" variants).

    AdaPrune, gAP and Neuron Merging as released never re-estimate BatchNorm after removing channels, while PSP trains
    in train mode and so does; with this post-step a gap to PSP cannot be recalibration alone. The wrapped method must
    be registered with ``uses="calibration"`` (or ``"labels"``) so that ``ctx.calibration`` has images to give.
    """

    def recalibrated(ctx: PruneContext) -> MethodResult:
        result = run(ctx)
        images = ctx.calibration()
        result.images_seen += recalibrate_batchnorm(result.model, images.to(ctx.device), ctx.settings.batch_size)
        result.extra["bn_recalibrated"] = True
        return result

    return recalibrated
