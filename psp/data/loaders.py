"""Batches for training and evaluation, and the calibration tensor for post-training methods.

In-memory datasets are sliced directly (no DataLoader: a 32×32 batch costs microseconds); folder datasets go
through a DataLoader with workers and pinned memory when the device is CUDA.
"""

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from psp.data.datasets import TensorImages


def _augment(x: torch.Tensor, generator: torch.Generator, pad: int) -> torch.Tensor:
    """Random crop after zero padding and random horizontal flip (3-channel images only), per image."""
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None].expand(n, x.shape[1], h, w + 2 * pad)
    out = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :].expand(n, x.shape[1], h, w)
    out = out.gather(3, cols)
    if x.shape[1] == 3:
        flip = torch.rand(n, generator=generator) < 0.5
        out[flip] = out[flip].flip(3)
    return out


def batches(dataset: Dataset, batch_size: int, normalize: tuple[torch.Tensor, torch.Tensor],
            device: torch.device | str = "cpu", shuffle: bool = False, seed: int = 0, augment: bool = False,
            indices: list[int] | None = None, workers: int = 2) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Normalised ``(images, labels)`` batches on ``device``; seeded shuffling and augmentation."""
    mean, std = (t.to(device) for t in normalize)
    generator = torch.Generator().manual_seed(seed)
    if isinstance(dataset, TensorImages):
        idx = torch.tensor(indices) if indices is not None else torch.arange(len(dataset))
        if shuffle:
            idx = idx[torch.randperm(len(idx), generator=generator)]
        for start in range(0, len(idx), batch_size):
            chunk = idx[start:start + batch_size]
            x = dataset.images_at(chunk)
            if augment:
                x = _augment(x, generator, pad=4 if x.shape[-1] >= 32 else 2)
            yield (x.to(device) - mean) / std, dataset.labels[chunk].to(device)
        return
    source = Subset(dataset, indices) if indices is not None else dataset
    loader = DataLoader(source, batch_size=batch_size, shuffle=shuffle, generator=generator, num_workers=workers,
                        pin_memory=torch.device(device).type == "cuda", persistent_workers=False)
    for x, y in loader:
        if augment and x.shape[-1] <= 64:
            x = _augment(x, generator, pad=4)
        yield (x.to(device, non_blocking=True) - mean) / std, y.to(device, non_blocking=True)


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
