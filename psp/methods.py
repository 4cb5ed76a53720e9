"""What a method is given and what it returns: ``PruneContext``, ``MethodResult``, and the wrappers that derive a
registered variant (fixed settings, BatchNorm re-estimation).

A method is a function ``run(ctx: PruneContext) -> MethodResult`` registered with ``@register_method``
(``psp.registry``; re-exported here, so that a method module imports one place).
"""

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import torch
from torch import nn
from torch.utils.data import Dataset

from psp.data.datasets import DataBundle
from psp.data.loaders import calibration_images, calibration_labels
from psp.data.normalization import normalizer
from psp.data.spec import DataSpec, example_input
from psp.reconstruct.batchnorm import recalibrate_batchnorm
from psp.registry import Method, get_method, list_methods, load_method_modules, register_method
from psp.settings import PruneSettings
from psp.structure.selection import Selection, select_channels

__all__ = ["Method", "MethodResult", "PruneContext", "Run", "fixed_settings", "get_method", "list_methods",
           "load_method_modules", "register_method", "with_bn_recalibration", "with_settings"]


Indices = Sequence[int] | Callable[[], Sequence[int]]  # training-split indices, or a function drawing them


@dataclass
class PruneContext:
    """Everything a method may use. ``calibration()`` returns the unlabeled images; ``data`` and
    ``calibration_labels()`` (the labels of exactly those images, for equal-data labeled controls) are for ``labels``
    methods only. Made by :meth:`build` alone, so that a method is given the same thing wherever it runs."""

    model: nn.Module  # the dense model, eval mode, on ``device``; methods must not modify it
    example: torch.Tensor  # one input of the right shape, on ``device``
    settings: PruneSettings
    device: torch.device
    normalize: tuple[torch.Tensor, torch.Tensor]
    calibration: Callable[[], torch.Tensor]
    data: DataBundle | None = None
    calibration_labels: Callable[[], torch.Tensor] | None = None
    resolved: bool = False  # settings are final: a variant's fixed settings were applied (and its budget scaled)

    @classmethod
    def build(cls, model: nn.Module, data: DataBundle | DataSpec, settings: PruneSettings, *,
              normalize: str | tuple[torch.Tensor, torch.Tensor], indices: Indices = (),
              device: torch.device | str = "cpu", uses: str = "calibration", resolved: bool = False
              ) -> "PruneContext":
        """The context ``psp.pipeline.prune_run`` gives a method, for every caller (tests and benchmarks too), so that
        a method is given the same thing wherever it runs.

        Args:
            model: the dense model, put in eval mode on ``device``.
            data: the data set, or only its spec for a ``none`` method (which has no images to draw).
            settings: the method's settings.
            normalize: a normalisation name (``psp.data.normalization``) or its ``(mean, std)``.
            indices: the training images to calibrate on, or a function returning them, called on first use only
                (a ``labels`` method that never asks draws nothing).
            device: where the model and the example input go. Calibration images and labels stay on the host, where
                each method moves what it reads.
            uses: what the method reads (``psp.registry``). ``calibration``: the images are decoded here, so that the
                method's timed run excludes decoding. ``labels``: also ``data`` and ``calibration_labels``, and the
                images are decoded on first use. ``none``: asking for images raises.
            resolved: the settings are final (``psp.pipeline.resolved_settings``): a variant does not apply its fixed
                settings again, so a budget ladder's scaled epochs stand.
        """
        device = torch.device(device)
        spec = data if isinstance(data, DataSpec) else data.spec
        norm = normalizer(normalize, spec.in_channels) if isinstance(normalize, str) else normalize
        draw = indices if callable(indices) else lambda: indices

        def drawn() -> tuple[Dataset, Sequence[int]]:  # the training split and the images chosen from it
            if uses == "none":
                raise RuntimeError("a method that declared uses='none' asked for calibration images")
            return data.train, draw()

        @functools.cache
        def calibration() -> torch.Tensor:
            return calibration_images(*drawn(), norm)

        def labels() -> torch.Tensor:
            return calibration_labels(*drawn())

        if uses == "calibration":
            calibration()
        labeled = uses == "labels"
        return cls(model=model.to(device).eval(), example=example_input(spec, device), settings=settings,
                   device=device, normalize=norm, calibration=calibration, data=data if labeled else None,
                   calibration_labels=labels if labeled else None, resolved=resolved)

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
        result = run(ctx if ctx.resolved else replace(ctx, settings=replace(ctx.settings, **overrides)))
        result.extra["overrides"] = overrides
        return result

    variant.overrides = {**getattr(run, "overrides", {}), **overrides}  # read by fixed_settings
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

    recalibrated.overrides = getattr(run, "overrides", {})  # read by fixed_settings
    return recalibrated


def fixed_settings(run: Run) -> dict[str, object]:
    """The settings a registered variant fixes (``with_settings``, through any wrapper): the pipeline applies them
    before a run, so that metrics.json records, and hashes, the settings that ran."""
    return dict(getattr(run, "overrides", {}))
