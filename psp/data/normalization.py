"""Input normalisations by name. A property of the model checkpoint, not of the dataset."""

import torch

from psp.errors import UsageError, choice_error

NORMALIZATIONS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "mnist": ((0.1307,), (0.3081,)),
    "none": ((0.0,), (1.0,)),
}


def check_normalization(name: str) -> None:
    if name not in NORMALIZATIONS:
        raise choice_error("normalisation", name, list(NORMALIZATIONS))


def normalizer(name: str, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean, std)`` shaped ``(1, C, 1, 1)`` for ``channels`` input channels."""
    check_normalization(name)
    mean, std = NORMALIZATIONS[name]
    if len(mean) == 1:
        mean, std = mean * channels, std * channels
    if len(mean) != channels:
        raise UsageError(f"normalisation {name!r} is for {len(mean)}-channel images, the data has {channels}")
    return torch.tensor(mean).view(1, -1, 1, 1), torch.tensor(std).view(1, -1, 1, 1)
