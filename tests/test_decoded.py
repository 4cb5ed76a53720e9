"""The decoded-image cache of small ImageFolder splits: bit-identical to lazy decoding, reused, invalidated."""

import numpy as np
import pytest
import torch

from psp.data import decoded
from psp.data.datasets import FolderImages, load_data
from psp.data.decoded import DecodedFolder
from psp.data.loaders import batches, calibration_images
from psp.data.normalization import normalizer
from psp.errors import UsageError

pytestmark = pytest.mark.timeout(120)


def _tree(root, per_class: int = 3, side: int = 8) -> None:
    """Two classes of PNG and JPEG images (JPEG: lossy decoding, the case where bit equality is not trivial)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c in ("cat", "dog"):
            (root / split / c).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                pixels = Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8))
                pixels.save(root / split / c / f"{i}.{'jpg' if i % 2 else 'png'}")


def _lazy(root, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setenv("PSP_DECODED_CACHE", "0")
        return load_data(f"imagefolder:{root}")


def test_cached_equals_lazy_bitwise(tmp_path, monkeypatch):
    """image(i), images_at, labels, classes and normalised batches are the same floats as lazy decoding gives."""
    _tree(tmp_path)
    lazy, cached = _lazy(tmp_path, monkeypatch), load_data(f"imagefolder:{tmp_path}")
    assert isinstance(lazy.train, FolderImages) and isinstance(cached.train, DecodedFolder)
    assert cached.spec == lazy.spec
    norm = normalizer("imagenet", 3)
    for a, b in ((lazy.train, cached.train), (lazy.test, cached.test)):
        assert b.classes == a.classes and len(b) == len(a)
        assert [b.label(i) for i in range(len(b))] == [a.label(i) for i in range(len(a))]
        for i in range(len(a)):
            assert torch.equal(b.image(i), a.image(i))
            assert torch.equal(b[i][0], a[i][0]) and b[i][1] == a[i][1]
        assert torch.equal(b.images_at(torch.arange(len(a))), torch.stack([a.image(i) for i in range(len(a))]))
        assert torch.equal(calibration_images(b, [4, 0, 2], norm), calibration_images(a, [4, 0, 2], norm))
        (xa, ya), (xb, yb) = next(batches(a, 64, norm, workers=0)), next(batches(b, 64, norm))
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_cache_is_reused_and_invalidated(tmp_path, monkeypatch):
    """A second load reads the cache file without decoding; adding an image changes the key and decodes again."""
    _tree(tmp_path)
    calls = []
    real = decoded._decode_all
    monkeypatch.setattr(decoded, "_decode_all", lambda folder: calls.append(folder.root) or real(folder))
    first = load_data(f"imagefolder:{tmp_path}")
    assert len(calls) == 2
    assert len(list((decoded.cache_dir() / "decoded").glob(f"{tmp_path.name}-*.pt"))) == 2
    again = load_data(f"imagefolder:{tmp_path}")
    assert len(calls) == 2, "the second load decoded again"
    assert torch.equal(again.train.images, first.train.images)
    (tmp_path / "train" / "dog" / "2.png").rename(tmp_path / "train" / "dog" / "9.png")
    renamed = load_data(f"imagefolder:{tmp_path}")
    assert calls[2:] == [tmp_path / "train"], "a changed file set must invalidate the train split only"
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "test" / "cat" / "extra.png")
    grown = load_data(f"imagefolder:{tmp_path}")
    assert len(grown.test) == len(renamed.test) + 1 and calls[3:] == [tmp_path / "test"]


def test_cache_folder_from_environment(tmp_path, monkeypatch):
    """PSP_CACHE_DIR, else XDG_CACHE_HOME/psp-bench, else ~/.cache/psp-bench."""
    monkeypatch.setenv("PSP_CACHE_DIR", str(tmp_path / "a"))
    assert decoded.cache_dir() == tmp_path / "a"
    monkeypatch.delenv("PSP_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert decoded.cache_dir() == tmp_path / "x" / "psp-bench"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert decoded.cache_dir() == tmp_path / "home" / ".cache" / "psp-bench"


def test_mixed_sizes_stay_lazy(tmp_path):
    """Images of differing sizes cannot form one tensor: the split is decoded image by image, as before."""
    from PIL import Image

    _tree(tmp_path)
    Image.new("RGB", (6, 6)).save(tmp_path / "train" / "dog" / "small.png")
    bundle = load_data(f"imagefolder:{tmp_path}")
    assert isinstance(bundle.train, FolderImages) and isinstance(bundle.test, DecodedFolder)


def test_opt_out_and_bad_value(tmp_path, monkeypatch):
    """PSP_DECODED_CACHE=0 keeps lazy decoding; another value is a one-line usage error naming it."""
    _tree(tmp_path)
    assert isinstance(_lazy(tmp_path, monkeypatch).test, FolderImages)
    monkeypatch.setenv("PSP_DECODED_CACHE", "yes")
    with pytest.raises(UsageError, match="'yes'"):
        load_data(f"imagefolder:{tmp_path}")


def test_unwritable_cache_still_decodes(tmp_path, monkeypatch):
    """A cache folder that cannot be written costs the cache, not the run."""
    _tree(tmp_path / "data")
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("PSP_CACHE_DIR", str(tmp_path / "file"))
    assert isinstance(load_data(f"imagefolder:{tmp_path / 'data'}").train, DecodedFolder)


def test_pool_decoding_matches_serial(tmp_path, monkeypatch):
    """Worker processes decode the same pixels, in the same order, as one process."""
    _tree(tmp_path, per_class=5)
    folder = FolderImages(tmp_path / "train", train=True)
    serial = decoded._decode_all(folder)
    monkeypatch.setattr(decoded, "POOL_MIN_IMAGES", 1)
    monkeypatch.setattr(decoded, "CHUNK", 3)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert np.array_equal(decoded._decode_all(folder), serial)
