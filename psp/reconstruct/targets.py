"""The original model's layer outputs on the calibration images: the reconstruction targets.

They never change (no augmentation), so when they fit the memory budget they are computed once; otherwise they are
recomputed for every batch (bounded memory, more time). ``keep`` restricts a layer's targets to the output channels
that survive pruning.
"""

import torch
from torch import nn

from psp.reconstruct.taps import LayerTaps


class TargetStore:
    def __init__(self, original: nn.Module, images: torch.Tensor, layers: list[str], cache_bytes: int,
                 batch_size: int, keep: dict[str, torch.Tensor] | None = None) -> None:
        self.original, self.images, self.layers = original, images, layers
        self.keep = keep or {}
        self.batch_size = batch_size
        self.cached: dict[str, torch.Tensor] | None = None
        if self.bytes_needed() <= cache_bytes:
            self.cached = self._compute(torch.arange(len(images)))

    @torch.no_grad()
    def _compute(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        parts: dict[str, list[torch.Tensor]] = {n: [] for n in self.layers}
        for start in range(0, len(idx), self.batch_size):
            with LayerTaps(self.original, self.layers) as taps:
                self.original(self.images[idx[start:start + self.batch_size]])
            for n in self.layers:
                out = taps.outputs[n]
                parts[n].append(out.index_select(1, self.keep[n].to(out.device)) if n in self.keep else out)
        return {n: torch.cat(p) for n, p in parts.items()}

    @torch.no_grad()
    def bytes_needed(self) -> int:
        with LayerTaps(self.original, self.layers) as taps:
            self.original(self.images[:1])
        per_image = sum(taps.outputs[n][:1].numel() * taps.outputs[n].element_size() for n in self.layers)
        return per_image * len(self.images)

    def restrict(self, keep: dict[str, torch.Tensor]) -> "TargetStore":
        """The same targets limited to surviving output channels, reusing the cache when there is one."""
        store = object.__new__(TargetStore)
        store.original, store.images, store.layers = self.original, self.images, self.layers
        store.batch_size, store.keep = self.batch_size, keep
        store.cached = None
        if self.cached is not None:
            store.cached = {n: t.index_select(1, keep[n].to(t.device)) if n in keep else t
                            for n, t in self.cached.items()}
        return store

    def batch(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.cached is not None:
            return {n: t[idx] for n, t in self.cached.items()}
        return self._compute(idx)
