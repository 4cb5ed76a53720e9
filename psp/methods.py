"""The method registry: PSP, its ablations and controls, and every baseline register here by name.

A method is a function ``run(ctx: PruneContext) -> MethodResult``. It declares which data it reads (``uses``):
``calibration`` methods get unlabeled calibration images only, ``labels`` methods the labeled training split,
``none`` methods nothing. New methods register with ``@register_method``, from this package, from ``baselines``, from
a module named in ``PSP_METHOD_MODULES`` / ``--method-module``, or from a ``psp_bench.methods`` entry point.
"""

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib.metadata import entry_points

import torch
from torch import nn

from psp.data.datasets import DataBundle
from psp.errors import UsageError, choice_error
from psp.reconstruct.batchnorm import recalibrate_batchnorm
from psp.settings import PruneSettings
from psp.structure.groups import channel_groups
from psp.structure.importance import score_groups
from psp.structure.selection import CostModel, Selection, select_by_ratio, select_by_target_macs

USES = ("calibration", "labels", "none")


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
        model = model if model is not None else self.model
        s = self.settings
        if (s.ratio is None) == (s.target_macs is None):
            raise UsageError("give exactly one of ratio (0 < R < 1) or target_macs (X > 1)")
        groups = channel_groups(model, self.example)
        scores = score_groups(groups, s.importance, s.seed)
        units = {g.root: g.units for g in groups}
        cost = CostModel(model, self.example, groups)
        if s.target_macs is not None:
            return select_by_target_macs(scores, cost, s.target_macs, s.selection, s.min_channels, s.round_to, units)
        selection = select_by_ratio(scores, s.ratio, s.selection, s.min_channels, s.round_to, units)
        emptied = cost.emptied(selection)
        if emptied:  # a tensor several groups feed (ShuffleNet's) can lose every channel while each group keeps some
            raise UsageError(f"ratio {s.ratio} would remove every channel of layer {emptied}; use a lower ratio or "
                             f"--target-macs")
        return selection


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


@dataclass(frozen=True)
class Method:
    name: str
    run: Run
    uses: str
    summary: str


_methods: dict[str, Method] = {}
_loaded = False


def register_method(name: str, uses: str, summary: str = "") -> Callable[[Run], Run]:
    """Register ``fn(ctx) -> MethodResult`` as method ``name`` reading ``uses`` data."""
    if uses not in USES:
        raise ValueError(f"method {name!r}: uses must be one of {USES}")

    def wrap(fn: Run) -> Run:
        if name in _methods and _methods[name].run is not fn:
            raise RuntimeError(f"method {name!r} registered twice")
        _methods[name] = Method(name, fn, uses, summary or (fn.__doc__ or "").strip().split("\n")[0])
        return fn

    return wrap


def load_method_modules(modules: list[str] | None = None) -> None:
    """Import the built-in methods, then extra modules (argument, ``PSP_METHOD_MODULES``) and entry points."""
    global _loaded
    if not _loaded:
        importlib.import_module("psp.algorithms")
        importlib.import_module("baselines")
        for ep in entry_points(group="psp_bench.methods"):
            ep.load()
        _loaded = True
    extra = list(modules or []) + [m for m in os.environ.get("PSP_METHOD_MODULES", "").split(",") if m]
    for module in extra:
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise UsageError(f"method module {module!r} cannot be imported ({e})") from None


def list_methods() -> list[str]:
    load_method_modules()
    return sorted(_methods)


def get_method(name: str) -> Method:
    load_method_modules()
    if name not in _methods:
        raise choice_error("method", name, sorted(_methods))
    return _methods[name]
