"""The method registry: every method, built in or not, registers here by name.

A method is a function ``run(ctx: PruneContext) -> MethodResult`` (``psp.methods``) that declares which data it
reads (``uses``): ``calibration`` methods get unlabeled calibration images only, ``labels`` methods the labeled
training split, ``none`` methods nothing. It also declares its ``family`` (``psp.options.FAMILIES``) and ``traits``
(``psp.options.TRAITS``): the workflow's tables, figures and claims group and pick methods by them
(:func:`catalogue`), so a new method needs no edit there. Its ``budget`` names the settings that set how much compute
it spends (its epochs): a budget ladder scales them (:func:`budget_settings`), so that methods are compared at equal
compute as well as at their own defaults. Methods are found the same way whoever wrote them: through the
``psp_bench.methods`` entry point (PSP, its controls and the baselines are entry points of this package, see
``pyproject.toml``), a module named by ``--method-module`` or ``PSP_METHOD_MODULES``. The registry names no method
module itself, so no import leads back to it.
"""

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, fields
from importlib.metadata import entry_points

from psp.errors import UsageError, choice_error
from psp.options import FAMILIES, TRAITS, USES
from psp.settings import PruneSettings

ENTRY_POINTS = "psp_bench.methods"

Run = Callable[..., object]  # (ctx: psp.methods.PruneContext) -> psp.methods.MethodResult


@dataclass(frozen=True)
class Method:
    name: str
    run: Run
    uses: str
    summary: str
    family: str
    traits: tuple[str, ...] = ()
    budget: tuple[str, ...] = ()  # the settings a budget ladder scales


_methods: dict[str, Method] = {}  # name -> method, filled by register_method
_loaded = False  # whether the entry points have been imported


def default_family(uses: str) -> str:
    """The family of a method that declares none: it retrains when it reads labels, else it is post-training."""
    return "retraining" if uses == "labels" else "post-training"


def register_method(name: str, uses: str, summary: str = "", family: str | None = None,
                    traits: tuple[str, ...] = (), budget: tuple[str, ...] = ()) -> Callable[[Run], Run]:
    """Register ``fn(ctx) -> MethodResult`` as method ``name`` reading ``uses`` data, shown in ``family``
    (default: :func:`default_family`) with ``traits``, its compute set by the integer settings ``budget`` (none: it
    has no budget to scale). Methods of a family are listed in registration order."""
    family = family or default_family(uses)
    for what, value, accepted in (("uses", uses, USES), ("family", family, FAMILIES)):
        if value not in accepted:
            raise ValueError(f"method {name!r}: {what} {value!r} is not one of {', '.join(accepted)}")
    stray = [trait for trait in traits if trait not in TRAITS]
    if stray:
        raise ValueError(f"method {name!r}: traits {stray} are not among {', '.join(TRAITS)}")
    counts = [f.name for f in fields(PruneSettings) if f.type in (int, "int")]
    stray = [setting for setting in budget if setting not in counts]
    if stray:
        raise ValueError(f"method {name!r}: budget settings {stray} are not integer settings ({', '.join(counts)})")

    def wrap(fn: Run) -> Run:
        if name in _methods and _methods[name].run is not fn:
            raise RuntimeError(f"method {name!r} registered twice")
        _methods[name] = Method(name, fn, uses, summary or (fn.__doc__ or "").strip().split("\n")[0], family,
                                tuple(traits), tuple(budget))
        return fn

    return wrap


def load_method_modules(modules: list[str] | None = None) -> None:
    """Import the ``psp_bench.methods`` entry points (once), then extra modules (argument, ``PSP_METHOD_MODULES``)."""
    global _loaded
    if not _loaded:
        for ep in entry_points(group=ENTRY_POINTS):
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


def catalogue() -> dict[str, dict]:
    """Every registered method as plain data (``uses``, ``family``, ``traits``, ``summary``) in table order: by
    family, then by registration. The workflow hands it to its torch-free report scripts."""
    load_method_modules()
    ordered = sorted(_methods.values(), key=lambda m: FAMILIES.index(m.family))  # stable: registration order kept
    return {m.name: {"uses": m.uses, "family": m.family, "traits": list(m.traits), "summary": m.summary,
                     "budget": list(m.budget)} for m in ordered}


def budget_settings(method: Method, settings: PruneSettings, scale: float) -> dict[str, int]:
    """The method's budget settings at ``scale`` times their value in ``settings`` (rounded; a setting that is
    not 0 stays at least 1, one that is 0, e.g. psp_no_rec's phase 2, stays 0)."""
    if scale != 1 and not method.budget:
        raise UsageError(f"budget {scale:g}: method {method.name} registers no budget settings to scale; "
                         f"only methods with epochs (psp list) take a budget")
    return {name: max(1, round(getattr(settings, name) * scale)) if getattr(settings, name) else 0
            for name in method.budget}
