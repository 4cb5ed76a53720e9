"""The two kinds of image split: ``TensorImages`` (uint8 images in memory) and ``FolderImages`` (an ImageFolder
decoded lazily). Both yield floats in [0, 1] and offer ``image(i)`` without the label. A module of its own so that
the decoded-image cache (:mod:`psp.data.decoded`) and the dataset loaders (:mod:`psp.data.datasets`) both build on
it without importing each other.
"""

from pathlib import Path

import torch
from torch.utils.data import Dataset

from psp.errors import UsageError

LARGE_IMAGE = 64  # ImageFolder images above this side are resized/cropped ImageNet-style to 224


class TensorImages(Dataset):
    """Images held in memory as a uint8 ``(N, C, H, W)`` tensor, labels as a long tensor."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def scaled(self, x: torch.Tensor) -> torch.Tensor:
        """Stored uint8 images (on any device) as floats in [0, 1]: the loaders convert a batch where it lives."""
        return x.float() / 255

    def image(self, i: int) -> torch.Tensor:
        return self.scaled(self.images[i])

    def images_at(self, idx: torch.Tensor) -> torch.Tensor:
        return self.scaled(self.images[idx])

    def label(self, i: int) -> int:
        return int(self.labels[i])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.image(i), int(self.labels[i])


class FolderImages(Dataset):
    """An ImageFolder split decoded lazily (JPEG/PNG), resized ImageNet-style when images are large; a split of
    small images is decoded once into a cached in-memory tensor instead (:mod:`psp.data.decoded`).

    Items are augmented for training only when images are large (random resized crops); ``image(i)`` is always the
    deterministic view.
    """

    def __init__(self, root: Path, train: bool) -> None:
        from torchvision.datasets import ImageFolder
        from torchvision.transforms import v2

        try:
            folder = ImageFolder(str(root))
        except FileNotFoundError:
            raise UsageError(f"no images under {root}; expected {root}/<class>/<image>") from None
        self.root, self.samples, self.classes = root, folder.samples, folder.classes
        self.loader = folder.loader
        side = max(self.loader(self.samples[0][0]).size)
        large = side > LARGE_IMAGE
        self.image_size = 224 if large else side
        to_float = [v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True)]
        fixed = [v2.Resize(256, antialias=True), v2.CenterCrop(224)] if large else []
        # Small images are augmented per batch by the training loop; large ones need per-image crops here.
        augmented = [v2.RandomResizedCrop(224, antialias=True), v2.RandomHorizontalFlip()] if large and train else fixed
        self.fixed = v2.Compose(fixed + to_float)
        self.augmented = v2.Compose(augmented + to_float)

    def __len__(self) -> int:
        return len(self.samples)

    def image(self, i: int) -> torch.Tensor:
        """The image alone, deterministically transformed (what calibration sees)."""
        return self.fixed(self.loader(self.samples[i][0]).convert("RGB"))

    def label(self, i: int) -> int:
        """The class index alone, without decoding the image."""
        return self.samples[i][1]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.augmented(self.loader(self.samples[i][0]).convert("RGB")), self.samples[i][1]
