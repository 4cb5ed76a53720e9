"""Batches for training and evaluation, and the calibration tensor for post-training methods.

In-memory datasets are sliced directly (no DataLoader: a 32×32 batch costs microseconds) and go to the device as
uint8, to be scaled, augmented and normalised there; a CUDA device holds a small split whole, so training steps copy
nothing from the host. Folder datasets go through a DataLoader with workers and pinned memory when the device is CUDA.
Random draws stay on the CPU generator, so a seed gives the same batches on every device.
"""

from collections.abc import Iterator
from typing import NamedTuple

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from psp.data.datasets import TensorImages

RESIDENT_BYTES = 1 << 30  # a uint8 split up to this size is copied to a CUDA device once per pass, not per batch


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``t`` on ``device``; a host tensor bound for CUDA goes through pinned memory, so the host never waits for the
    device to copy it."""
    if device.type == "cuda" and not t.is_cuda:
        t = t.pin_memory()
    return t.to(device, non_blocking=True)


class Augmentation(NamedTuple):
    """Per-image crop offsets into the zero-padded image and horizontal flips (None: no flips)."""

    dy: torch.Tensor
    dx: torch.Tensor
    flip: torch.Tensor | None
    pad: int


def draw_augmentation(n: int, channels: int, generator: torch.Generator, pad: int) -> Augmentation:
    """Draw on the CPU generator, in the order training has always drawn (crop rows, crop columns, flips of colour
    images), so that seeded runs keep their augmentation wherever the batch lives."""
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5 if channels == 3 else None
    return Augmentation(dy, dx, flip, pad)


def apply_augmentation(x: torch.Tensor, aug: Augmentation) -> torch.Tensor:
    """Random crop after zero padding, then the flips, on ``x``'s device; the flip is folded into the column index
    (a boolean mask would make the host wait for the device)."""
    n, c, h, w = x.shape
    pad, device = aug.pad, x.device
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy, dx = to_device(aug.dy, device), to_device(aug.dx, device)
    rows = (dy[:, None] + torch.arange(h, device=device))[:, None, :, None].expand(n, c, h, w + 2 * pad)
    cols = torch.arange(w, device=device).expand(n, w)
    if aug.flip is not None:
        cols = torch.where(to_device(aug.flip, device)[:, None], w - 1 - cols, cols)
    cols = (dx[:, None] + cols)[:, None, None, :].expand(n, c, h, w)
    return padded.gather(2, rows).gather(3, cols)


def batches(dataset: Dataset, batch_size: int, normalize: tuple[torch.Tensor, torch.Tensor],
            device: torch.device | str = "cpu", shuffle: bool = False, seed: int = 0, augment: bool = False,
            indices: list[int] | None = None, workers: int = 2) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Normalised ``(images, labels)`` batches on ``device``; seeded shuffling and augmentation."""
    device = torch.device(device)
    mean, std = (t.to(device) for t in normalize)
    generator = torch.Generator().manual_seed(seed)
    if isinstance(dataset, TensorImages):
        yield from _tensor_batches(dataset, batch_size, mean, std, device, shuffle, generator, augment, indices)
        return
    source = Subset(dataset, indices) if indices is not None else dataset
    loader = DataLoader(source, batch_size=batch_size, shuffle=shuffle, generator=generator, num_workers=workers,
                        pin_memory=device.type == "cuda", persistent_workers=False)
    for x, y in loader:
        x = x.to(device, non_blocking=True)
        if augment and x.shape[-1] <= 64:
            x = apply_augmentation(x, draw_augmentation(len(x), x.shape[1], generator, pad=4))
        yield (x - mean) / std, y.to(device, non_blocking=True)


def _tensor_batches(dataset: TensorImages, batch_size: int, mean: torch.Tensor, std: torch.Tensor,
                    device: torch.device, shuffle: bool, generator: torch.Generator, augment: bool,
                    indices: list[int] | None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Slices of an in-memory split: uint8 to the device first, then scaled, augmented and normalised there."""
    # Indices start on the host beside the stored split (and the CPU generator); they move with it to a device.
    idx = torch.tensor(indices) if indices is not None else torch.arange(len(dataset))
    if shuffle:
        idx = idx[torch.randperm(len(idx), generator=generator)]
    images, labels = dataset.images, dataset.labels
    if device.type == "cuda" and images.nbytes <= RESIDENT_BYTES:
        images, labels, idx = images.to(device), labels.to(device), idx.to(device)
    for start in range(0, len(idx), batch_size):
        chunk = idx[start:start + batch_size]
        x = dataset.scaled(to_device(images[chunk], device))
        if augment:
            x = apply_augmentation(x, draw_augmentation(len(x), x.shape[1], generator, 4 if x.shape[-1] >= 32 else 2))
        yield (x - mean) / std, to_device(labels[chunk], device)


def calibration_images(dataset: Dataset, indices: list[int], normalize: tuple[torch.Tensor, torch.Tensor]
                       ) -> torch.Tensor:
    """The calibration set as one normalised ``(N, C, H, W)`` tensor, read through ``image(i)``: no labels."""
    if isinstance(dataset, TensorImages):
        x = dataset.images_at(torch.tensor(indices))
    else:
        x = torch.stack([dataset.image(i) for i in indices])
    mean, std = normalize
    return (x - mean) / std


def calibration_labels(dataset: Dataset, indices: list[int]) -> torch.Tensor:
    """The labels of the calibration images, in the same order: for the equal-data labeled control only."""
    return torch.tensor([dataset.label(i) for i in indices], dtype=torch.long)
