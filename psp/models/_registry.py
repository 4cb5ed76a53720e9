"""Model registry by decorator (timm style): names map to builders that take a data spec.

Every builder has the signature ``fn(data: DataSpec, **kwargs) -> nn.Module`` so that any registered model builds
for any dataset's channels, image size and number of classes. ``tv:<name>`` and ``timm:<name>`` resolve to
torchvision and timm models without registration. A model also registers the options that make it narrow
(``tiny_options``): tests and smoke runs build every registered model that way, so a new model is checked without
being listed again.
"""

from collections.abc import Callable
from fnmatch import fnmatch

from torch import nn

from psp.data.spec import DataSpec
from psp.errors import UsageError, choice_error

__all__ = ["register_model", "create_model", "list_models", "is_model", "default_normalization", "tiny_options"]

ModelBuilder = Callable[..., nn.Module]

_builders: dict[str, ModelBuilder] = {}  # registry name -> builder
_normalization: dict[str, str] = {}  # registry name -> normalisation its public checkpoints were trained with
_tiny: dict[str, dict] = {}  # registry name -> options that make it narrow for fast checks (absent: small already)
EXTERNAL_PREFIXES = ("tv:", "timm:")


def register_model(fn: ModelBuilder | None = None, *, normalize: str = "dataset",
                   tiny: dict | None = None) -> ModelBuilder | Callable:
    """Register ``fn`` under its function name; ``normalize`` is the checkpoint normalisation default, ``tiny`` the
    builder options that make the model narrow (see :func:`tiny_options`)."""

    def wrap(f: ModelBuilder) -> ModelBuilder:
        if f.__name__ in _builders:
            raise RuntimeError(f"model {f.__name__!r} registered twice")
        _builders[f.__name__] = f
        _normalization[f.__name__] = normalize
        if tiny:
            _tiny[f.__name__] = dict(tiny)
        return f

    return wrap(fn) if fn is not None else wrap


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching a shell-style pattern (external ``tv:``/``timm:`` names are not listed)."""
    return sorted(n for n in _builders if fnmatch(n, pattern))


def is_model(name: str) -> bool:
    if name.startswith(EXTERNAL_PREFIXES):
        from psp.models import external

        return external.exists(name)
    return name in _builders


def default_normalization(name: str) -> str:
    """The normalisation a checkpoint of this architecture expects unless told otherwise."""
    if name.startswith(EXTERNAL_PREFIXES):
        return "imagenet"
    return _normalization.get(name, "dataset")


def tiny_options(name: str) -> dict:
    """The builder options that make ``name`` narrow, for checks of its graph rather than its accuracy (tests, smoke
    runs): ``create_model(name, data, **tiny_options(name))``. Empty for a model that is small already and for the
    unregistered ``tv:``/``timm:`` names."""
    return dict(_tiny.get(name, {}))


def check_model_name(name: str) -> None:
    if not is_model(name):
        raise choice_error("model", name, list_models() + ["tv:<torchvision name>", "timm:<timm name>"])


def create_model(name: str, data: DataSpec, **kwargs: object) -> nn.Module:
    """Build an untrained model for ``data``.

    Args:
        name: a registry name, ``tv:<torchvision name>`` or ``timm:<timm name>``.
        data: the data spec (input channels, image size, classes).
        **kwargs: builder options; ``None`` values are dropped so command-line defaults never override model ones.

    Example:
        >>> create_model("resnet20", DataSpec("mnist5k", 1, 28, 10))
    """
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    check_model_name(name)
    if name.startswith(EXTERNAL_PREFIXES):
        from psp.models import external

        return external.create(name, data, **kwargs)
    try:
        return _builders[name](data, **kwargs)
    except TypeError as e:
        raise UsageError(f"bad options {kwargs} for model {name!r}: {e}") from None
