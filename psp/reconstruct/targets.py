"""The original model's layer outputs on the calibration images: the reconstruction targets.

They never change (no augmentation), so when they fit the memory budget they are computed once, with each image's
squared norm per layer (the loss's denominators); otherwise they are recomputed for every batch (bounded memory,
more time). ``keep`` restricts a layer's targets to the output channels that survive pruning. The cache is written
batch by batch into tensors allocated once (no pieces concatenated: half the memory traffic, no second copy at the
peak), and so are the per-image norms (no full-size temporary); training batches are gathered, a layer at a time as
the loss asks, into buffers allocated once. Targets are cached, gathered and restricted in one layout (``fmt``:
channels-last when PSP runs so, ``psp.reconstruct.layout``), by default the one the original model produces them
in; phase 2 may run in another.
"""

import torch
from torch import nn

from psp.reconstruct import layout
from psp.reconstruct.residual import FUSE_MIN_BYTES, gathered_residual, squared_norm, subtract
from psp.reconstruct.taps import layer_outputs


class TargetBatch:
    """One training batch's targets, handed out a layer at a time as the loss reaches it, so that a cached layer's
    rows are read while its output is still in the processor's cache: as they are (``take``), or as the difference
    from the layer's output with its squared norm (``residual``: gathered, subtracted and squared in one pass,
    ``psp.reconstruct.residual``). The tensor handed out is the caller's to overwrite (the store's buffer for that
    layer, or a tensor computed for this batch) until the next batch; the denominator is the rows' summed squared
    norm, taken before."""

    def __init__(self, store: "TargetStore", idx: torch.Tensor) -> None:
        self.store, self.idx = store, idx
        self.computed = store._compute(idx) if store.cached is None else None
        self._taken: set[str] = set()

    def _computed(self, name: str) -> torch.Tensor:
        if name in self._taken:  # the caller may have overwritten it; a cache gathers the rows again
            raise RuntimeError(f"layer {name!r} ran twice in one pass: targets computed per batch serve each "
                               "layer once (cache them: --cache-targets within --cache-mib)")
        self._taken.add(name)
        return self.computed[name]

    def _buffer(self, name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The layer's cache, the batch's indices on its device, and the layer's buffer for the batch's rows."""
        store, cached = self.store, self.store.cached[name]
        idx = self.idx.to(cached.device)
        buffer = store._buffers.get(name)
        if buffer is None or len(buffer) < len(idx):
            buffer = store._buffers[name] = layout.empty_rows(cached, max(len(idx), store.batch_size))
        return cached, idx, buffer[:len(idx)]

    def take(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The layer's targets for the batch and their squared norm."""
        if self.computed is not None:
            target = self._computed(name)
            return target, squared_norm(target)
        cached, idx, buffer = self._buffer(name)
        return layout.index_select(cached, 0, idx, out=buffer), self.store.sqnorms[name][idx].sum()

    def residual(self, name: str, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``target - out`` (in a buffer of the batch's), its squared norm, and the targets' squared norm."""
        if self.computed is not None:
            target, denominator = self.take(name)
            return target, subtract(target, out), denominator
        cached, idx, buffer = self._buffer(name)
        squared = gathered_residual(cached, idx, out, buffer, fused=self.store.fused)
        return buffer, squared, self.store.sqnorms[name][idx].sum()


class TargetStore:
    def __init__(self, original: nn.Module, images: torch.Tensor, layers: list[str], cache_bytes: int,
                 batch_size: int, keep: dict[str, torch.Tensor] | None = None, fmt: str | None = None) -> None:
        self.original, self.images, self.layers = original, images, layers
        self.keep = keep or {}
        self.fmt = fmt
        self.batch_size = batch_size
        self.copies: set[str] | None = None  # layers whose outputs a later in-place operation changes
        self.cached: dict[str, torch.Tensor] | None = None
        self.sqnorms: dict[str, torch.Tensor] = {}
        self._buffers: dict[str, torch.Tensor] = {}
        self.fused = False  # whether batches use the fused kernel (a cache of at least FUSE_MIN_BYTES)
        if (needed := self.bytes_needed()) <= cache_bytes:
            self._cache_all()
            self.fused = needed >= FUSE_MIN_BYTES

    @torch.no_grad()
    def _cache_all(self) -> None:
        n = len(self.images)
        self.cached = {}
        for start in range(0, n, self.batch_size):
            for name, out in self._compute(torch.arange(start, min(start + self.batch_size, n),
                                                        device=self.images.device)).items():
                if name not in self.cached:
                    self.cached[name] = layout.empty_rows(out, n)
                self.cached[name][start:start + len(out)] = out
        self._index_norms()

    def _index_norms(self) -> None:
        """Each image's squared norm per layer, a batch of rows at a time."""
        self.sqnorms = {}
        for name, t in self.cached.items():
            self.sqnorms[name] = t.new_empty(len(t))
            for start in range(0, len(t), self.batch_size):
                rows = layout.in_memory_order(t[start:start + self.batch_size]).flatten(1)
                self.sqnorms[name][start:start + len(rows)] = torch.linalg.vecdot(rows, rows)  # no squares written
        self._buffers = {}

    @torch.no_grad()
    def _compute(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        """The targets of images ``idx`` (one batch), restricted to ``keep``, in layout ``fmt``."""
        outputs, self.copies = layer_outputs(self.original, self.layers, self.images[idx], self.copies)
        return {n: _restricted(outputs[n], self.keep.get(n), self.fmt) for n in self.layers}

    @torch.no_grad()
    def bytes_needed(self) -> int:
        """Bytes of a full-width cache (an upper bound once channels are removed)."""
        outputs, self.copies = layer_outputs(self.original, self.layers, self.images[:1], self.copies)
        per_image = sum(outputs[n][:1].numel() * outputs[n].element_size() for n in self.layers)
        return per_image * len(self.images)

    def restrict(self, keep: dict[str, torch.Tensor], fmt: str | None = None) -> "TargetStore":
        """The same targets limited to surviving output channels, in layout ``fmt`` (default: this store's),
        reusing the cache when there is one."""
        store = object.__new__(TargetStore)
        store.original, store.images, store.layers = self.original, self.images, self.layers
        store.batch_size, store.keep, store.fmt = self.batch_size, keep, fmt or self.fmt
        store.copies, store.fused = self.copies, self.fused
        store.cached, store.sqnorms, store._buffers = None, {}, {}
        if self.cached is not None:
            store.cached = {n: _restricted(t, keep.get(n), store.fmt) for n, t in self.cached.items()}
            store._index_norms()
        return store

    def batch(self, idx: torch.Tensor) -> TargetBatch:
        """The targets of images ``idx``: computed now when nothing is cached, gathered layer by layer otherwise."""
        return TargetBatch(self, idx)


def _restricted(t: torch.Tensor, keep: torch.Tensor | None, fmt: str | None) -> torch.Tensor:
    """``t``'s output channels ``keep`` (all if None), in layout ``fmt`` (None: ``t``'s)."""
    if keep is not None:
        keep = keep.to(t.device)
        t = layout.select_channels(t, keep) if fmt in (None, "channels_last") else t.index_select(1, keep)
    return t if fmt is None else layout.to_layout(t, fmt)
