"""Forward hooks that collect layer outputs, only on the layers a loss needs."""

import torch
from torch import nn

RECONSTRUCTED_TYPES = (nn.Conv2d, nn.Linear, nn.modules.batchnorm._BatchNorm)


def reconstruction_layers(model: nn.Module) -> list[str]:
    """Names of every conv, linear and BatchNorm layer, in module order: the holistic loss's layers."""
    return [n for n, m in model.named_modules() if isinstance(m, RECONSTRUCTED_TYPES)]


class LayerTaps:
    """``with LayerTaps(model, names) as taps: model(x)`` leaves ``taps.outputs[name]`` for each named layer."""

    def __init__(self, model: nn.Module, names: list[str]) -> None:
        self.model, self.names = model, names
        self.outputs: dict[str, torch.Tensor] = {}
        self._handles: list = []

    def __enter__(self) -> "LayerTaps":
        for name in self.names:
            self._handles.append(self.model.get_submodule(name).register_forward_hook(self._store(name)))
        return self

    def _store(self, name: str):
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            self.outputs[name] = output
        return hook

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
