"""Calibration and validation indices into the training split.

Calibration draws N images **without replacement** from a seeded generator (the released PSP code draws with
replacement from an unseeded one; ``replacement=True`` reproduces the former, seeded). A validation split of fixed
size is carved first with its own fixed seed, and calibration draws never touch it, so switches tuned on the
validation split are never tuned on calibration images or on the test set.
"""

from pathlib import Path

import torch

from psp.errors import UsageError

VALIDATION_SEED = 20240229


def validation_indices(n_train: int, size: int) -> list[int]:
    """The fixed validation carve: ``size`` training indices, the same for every seed and method."""
    if size == 0:
        return []
    if not 0 < size < n_train:
        raise UsageError(f"validation size {size} must be in [0, {n_train})")
    perm = torch.randperm(n_train, generator=torch.Generator().manual_seed(VALIDATION_SEED))
    return sorted(perm[:size].tolist())


def draw_calibration(n_train: int, samples: int, seed: int, validation_size: int = 0,
                     replacement: bool = False) -> list[int]:
    """``samples`` training indices outside the validation carve, drawn by a generator seeded with ``seed``."""
    held_out = set(validation_indices(n_train, validation_size))
    pool = torch.tensor([i for i in range(n_train) if i not in held_out], dtype=torch.long)
    if samples <= 0 or (not replacement and samples > len(pool)):
        raise UsageError(f"calibration size {samples} must be in [1, {len(pool)}] (training images outside the "
                         f"validation split)")
    generator = torch.Generator().manual_seed(seed)
    if replacement:
        picks = torch.randint(len(pool), (samples,), generator=generator)
    else:
        picks = torch.randperm(len(pool), generator=generator)[:samples]
    return pool[picks].tolist()


def read_indices(path: str | Path, n_train: int) -> list[int]:
    """Indices from a file, one integer per line (blank lines ignored), each in [0, n_train)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"calibration indices file {path} does not exist")
    indices = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        text = line.strip()
        if not text:
            continue
        try:
            value = int(text)
        except ValueError:
            raise UsageError(f"{path}:{lineno}: {text!r} is not an integer index") from None
        if not 0 <= value < n_train:
            raise UsageError(f"{path}:{lineno}: index {value} is outside the training split [0, {n_train})")
        indices.append(value)
    if not indices:
        raise UsageError(f"calibration indices file {path} is empty")
    return indices


def format_indices(indices: list[int]) -> str:
    return "".join(f"{i}\n" for i in indices)
