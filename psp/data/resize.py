"""Images resized on load (``--image-size N``), for architectures that cannot run on the data's own size.

ImageNet-style models (``tv:densenet121``, ``timm:convnext_*``) need about 32×32 or more; the 28×28 digits of
``mnist5k`` stay as they are stored and every image read is resized (bilinear, antialiased), so training,
evaluation and calibration all see the same N×N images.
"""

from dataclasses import replace

import torch
from torch.nn import functional as F
from torch.utils.data import Dataset

from psp.data.datasets import DataBundle, TensorImages


def resize_images(x: torch.Tensor, size: int) -> torch.Tensor:
    """A float ``(N, C, H, W)`` batch resized to ``size``×``size``."""
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


class ResizedTensorImages(TensorImages):
    """In-memory images resized batch by batch as they are read: the loaders keep their fast tensor path, and no
    resized copy of the split is held (CIFAR-10's training split at 224×224 would take 7.5 GB)."""

    def __init__(self, base: TensorImages, size: int) -> None:
        base = base.base if isinstance(base, ResizedTensorImages) else base
        super().__init__(base.images, base.labels)
        self.base, self.size = base, size

    def scaled(self, x: torch.Tensor) -> torch.Tensor:
        return resize_images(self.base.scaled(x), self.size)

    def image(self, i: int) -> torch.Tensor:
        return self.scaled(self.images[i][None])[0]


class ResizedImages(Dataset):
    """Any other dataset (an ImageFolder split) resized image by image, after its own transforms."""

    def __init__(self, base: Dataset, size: int) -> None:
        self.base, self.size = base, size

    def __len__(self) -> int:
        return len(self.base)

    def image(self, i: int) -> torch.Tensor:
        return resize_images(self.base.image(i)[None], self.size)[0]

    def label(self, i: int) -> int:
        return self.base.label(i)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x, y = self.base[i]
        return resize_images(x[None], self.size)[0], y


def _resized(split: Dataset, size: int) -> Dataset:
    if isinstance(split, TensorImages):  # a ResizedTensorImages too: it resizes its base's images
        return ResizedTensorImages(split, size)
    return ResizedImages(split.base if isinstance(split, ResizedImages) else split, size)


def resize_bundle(bundle: DataBundle, size: int | None) -> DataBundle:
    """``bundle`` with its images resized to ``size``×``size`` on load and its spec saying so; the bundle itself when
    ``size`` is None or already the images' size."""
    if size is None or size == bundle.spec.image_size:
        return bundle
    return DataBundle(replace(bundle.spec, image_size=size), _resized(bundle.train, size),
                      _resized(bundle.test, size), bundle.default_normalization, resized_from=bundle.native_size)
