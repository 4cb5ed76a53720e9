"""Small-image ImageFolder splits decoded once into a uint8 tensor, cached on disk.

Decoding every JPEG of CIFAR-10 again in every epoch and in every evaluation kept the loaders busy (1.5-1.75 s for
the 10,000 test images on 2 cores, against 0.06-0.09 s from memory) and a GPU waiting. A split whose images are all
of one size up to ``LARGE_IMAGE`` (no resize or crop) is decoded once, exactly as :class:`FolderImages` decodes it,
and stored as a ``(N, C, H, W)`` uint8 tensor in the cache folder; loads then take the in-memory tensor path of the
loaders. The cache key covers the split's resolved path, classes, file names, sizes and modification times, so
changed data is decoded again; concurrent jobs may both decode, and the atomic rename of the last one wins.

The cache folder is ``$PSP_CACHE_DIR``, else ``$XDG_CACHE_HOME/psp-bench``, else ``~/.cache/psp-bench``;
``PSP_DECODED_CACHE=0`` turns the cache off (splits are decoded lazily, image by image, as before).
"""

import hashlib
import io
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path

import numpy as np
import torch

from psp.data.images import LARGE_IMAGE, FolderImages, TensorImages
from psp.errors import UsageError
from psp.runtime import atomic_write_bytes

log = logging.getLogger(__name__)

FORMAT = 1  # bump when the stored layout or the decoding changes: old cache files are then ignored
POOL_MIN_IMAGES = 4000  # below this, starting worker processes costs more than it saves
CHUNK = 1000


class DecodedFolder(TensorImages):
    """An ImageFolder split held decoded in memory, with the floats :class:`FolderImages` gives, bit for bit."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, classes: list[str]) -> None:
        super().__init__(images, labels)
        self.classes, self.image_size = classes, images.shape[-1]

    def scaled(self, x: torch.Tensor) -> torch.Tensor:
        # torchvision's ToDtype(float32, scale=True) multiplies by 1/255, which differs from dividing by 255 in the
        # last bit for about half of the 256 values.
        return x.float().mul_(1.0 / 255)


def cache_dir() -> Path:
    """Where decoded splits are kept (see the module docstring)."""
    if os.environ.get("PSP_CACHE_DIR"):
        return Path(os.environ["PSP_CACHE_DIR"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "psp-bench"
    return Path.home() / ".cache" / "psp-bench"


def _cache_enabled() -> bool:
    value = os.environ.get("PSP_DECODED_CACHE", "1")
    if value not in ("0", "1"):
        raise UsageError(f"PSP_DECODED_CACHE={value!r}; accepted: 1 (decode small images once, the default) or 0")
    return value == "1"


def cache_key(folder: FolderImages) -> str:
    """A hash of what the decoded tensor depends on; one stat per file keeps it cheap (60,000 files: ~0.1 s)."""
    digest = hashlib.sha256(f"{FORMAT}\n{folder.root.resolve()}\n{folder.classes}\n".encode())
    prefix = f"{folder.root}{os.sep}"
    for path, label in folder.samples:
        stat = os.stat(path)
        digest.update(f"{path.removeprefix(prefix)}\0{label}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _decode(loader_and_paths: tuple) -> np.ndarray | None:
    """``(k, H, W, 3)`` uint8 pixels of the paths, decoded as FolderImages.image does; None if sizes differ."""
    loader, paths = loader_and_paths
    pixels = [np.asarray(loader(p).convert("RGB")) for p in paths]
    return np.stack(pixels) if len({a.shape for a in pixels}) == 1 else None


def _decode_all(folder: FolderImages) -> np.ndarray | None:
    """Every image of the split, in worker processes when there are many; None if their sizes differ."""
    paths = [p for p, _ in folder.samples]
    jobs = [(folder.loader, paths[i:i + CHUNK]) for i in range(0, len(paths), CHUNK)]
    workers = min(torch.get_num_threads(), len(jobs))
    if workers > 1 and len(paths) >= POOL_MIN_IMAGES and "fork" in get_all_start_methods():
        with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
            parts = list(pool.map(_decode, jobs))
    else:
        parts = [_decode(job) for job in jobs]
    if any(p is None for p in parts) or len({p.shape[1:] for p in parts}) > 1:
        return None
    return np.concatenate(parts)


def _load(path: Path, key: str) -> DecodedFolder | None:
    try:
        # Mapped, not read: a job that evaluates on the test split reads only the few training images it calibrates on.
        stored = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except OSError:  # not there yet (or unreadable): decoded again
        return None
    except Exception as e:  # a damaged file is decoded again and replaced
        log.warning("ignoring decoded cache %s: %s", path, e)
        return None
    if stored.get("key") != key:
        return None
    return DecodedFolder(stored["images"], stored["labels"], stored["classes"])


def cached_tensors(name: str, key: str, build: Callable[[], dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Tensors that are slow to make and never change for ``key`` (e.g. a dataset parsed from text), made by
    ``build`` once and read from the cache folder afterwards (every run of a workflow loads its data again)."""
    if not _cache_enabled():
        return build()
    digest = hashlib.sha256(f"{FORMAT}\n{name}\n{key}".encode()).hexdigest()[:24]
    path = cache_dir() / "decoded" / f"{name}-{digest}.pt"
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except OSError:  # not there yet: made below
        pass
    except Exception as e:  # a damaged file is made again and replaced
        log.warning("ignoring cached %s: %s", path, e)
    tensors = build()
    buffer = io.BytesIO()
    torch.save(tensors, buffer)
    try:
        atomic_write_bytes(path, buffer.getvalue())
    except OSError as e:
        log.warning("%s kept in memory only: cannot write %s (%s)", name, path, e)
    return tensors


def small_images_decoded(folder: FolderImages) -> TensorImages | FolderImages:
    """``folder`` as a cached decoded tensor when its images are small and of one size; else ``folder`` itself."""
    if folder.image_size > LARGE_IMAGE or not _cache_enabled():
        return folder
    key = cache_key(folder)
    path = cache_dir() / "decoded" / f"{folder.root.resolve().parent.name}-{folder.root.name}-{key[:24]}.pt"
    cached = _load(path, key)
    if cached is not None:
        log.debug("decoded %s read from %s", folder.root, path)
        return cached
    start = time.perf_counter()
    pixels = _decode_all(folder)
    if pixels is None:
        log.info("images of %s differ in size: decoding them one by one as they are read", folder.root)
        return folder
    images = torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous()
    labels = torch.tensor([label for _, label in folder.samples], dtype=torch.long)
    buffer = io.BytesIO()
    torch.save({"key": key, "images": images, "labels": labels, "classes": folder.classes}, buffer)
    try:
        atomic_write_bytes(path, buffer.getvalue())
    except OSError as e:
        log.warning("decoded %s kept in memory only: cannot write %s (%s)", folder.root, path, e)
    log.info("decoded %d images of %s once in %.1f s; cached as %s", len(images), folder.root,
             time.perf_counter() - start, path)
    return DecodedFolder(images, labels, folder.classes)
