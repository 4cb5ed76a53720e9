"""Refuse a model that cannot run on the data's image size before any work is done.

ImageNet-style architectures (``tv:densenet121``, ``timm:convnext_*``) downsample 32× and fail deep inside their
forward pass on 28×28 digits, after the data is loaded and output folders exist. One blank image through the model
finds out first; when it fails, a short search finds the smallest square size that runs, so the message can say
which ``--image-size`` to pass.
"""

from dataclasses import replace

import torch
from torch import nn

from psp.data.spec import DataSpec, example_input
from psp.errors import UsageError
from psp.modes import eval_mode

COMMON_SIZES = (32, 64, 96, 128, 160, 192, 224, 256, 299, 320, 384, 448, 512)
LARGEST_SIZE = 1024


def _error(model: nn.Module, spec: DataSpec, size: int, device: torch.device) -> Exception | None:
    """The exception one blank ``size``×``size`` image raises in ``model``, or None when it runs."""
    try:
        model(example_input(replace(spec, image_size=size), device))
    except Exception as e:  # torchvision and timm raise RuntimeError, ValueError or AssertionError for sizes
        return e
    return None


def _candidates(size: int) -> list[int]:
    """Sizes above ``size`` to try in ascending order: doublings of it and the common sizes, up to the largest."""
    doublings = [size * 2 ** k for k in range(1, 11) if size * 2 ** k < LARGEST_SIZE]
    return sorted(s for s in {*doublings, *COMMON_SIZES, LARGEST_SIZE} if s > size)


def smallest_size(model: nn.Module, spec: DataSpec, device: torch.device) -> int | None:
    """The smallest square size above the spec's (at which ``model`` fails) that runs, or None when none up to
    ``LARGEST_SIZE`` does. Call in eval mode, without gradients."""
    failing = spec.image_size
    for size in _candidates(spec.image_size):
        if _error(model, spec, size, device) is None:
            break
        failing = size
    else:
        return None
    # Sizes in between need not be monotone (a ViT runs at exactly one size): ``size`` always holds one that ran.
    while size - failing > 1:
        middle = (failing + size) // 2
        if _error(model, spec, middle, device) is None:
            size = middle
        else:
            failing = middle
    return size


def check_input_size(model: nn.Module, spec: DataSpec, name: str) -> None:
    """Raise a one-line UsageError when ``model`` cannot run on the spec's images, naming the smallest size that
    runs. One forward pass of one blank image when it runs; eval mode, no gradients, the model's mode restored."""
    device = next(model.parameters(), torch.empty(0)).device
    with eval_mode(model), torch.no_grad():
        error = _error(model, spec, spec.image_size, device)
        if error is None:
            return
        needed = smallest_size(model, spec, device)
    s = spec.image_size
    if needed is None:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UsageError(f"model {name} cannot run on {s}x{s} images (data {spec.name}), nor on any size up to "
                         f"{LARGEST_SIZE}x{LARGEST_SIZE}: {reason}")
    raise UsageError(f"model {name} cannot run on {s}x{s} images (data {spec.name}): it needs at least "
                     f"{needed}x{needed}; pass --image-size {needed} to resize the images on load")
