"""Forward hooks on the layers a loss needs: collecting their outputs, or (``LayerHooks``) doing something else with
each as it is made."""

from collections.abc import Callable

import torch
from torch import nn

RECONSTRUCTED_TYPES = (nn.Conv2d, nn.Linear, nn.modules.batchnorm._BatchNorm)


def reconstruction_layers(model: nn.Module) -> list[str]:
    """Names of every conv, linear and BatchNorm layer, in module order: the holistic loss's layers."""
    return [n for n, m in model.named_modules() if isinstance(m, RECONSTRUCTED_TYPES)]


class LayerHooks:
    """Inside ``with``, ``self.on_output(name, output)`` runs for each named layer's output as it is made."""

    def __init__(self, model: nn.Module, names: list[str]) -> None:
        self.model, self.names = model, names
        self._handles: list = []

    def on_output(self, name: str, output: torch.Tensor) -> None:
        raise NotImplementedError

    def __enter__(self) -> "LayerHooks":
        for name in self.names:
            self._handles.append(self.model.get_submodule(name).register_forward_hook(self._hook(name)))
        return self

    def _hook(self, name: str) -> Callable:
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            self.on_output(name, output)
        return hook

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()


class LayerTaps(LayerHooks):
    """``with LayerTaps(model, names) as taps: model(x)`` leaves ``taps.outputs[name]`` for each named layer."""

    def __init__(self, model: nn.Module, names: list[str]) -> None:
        super().__init__(model, names)
        self.outputs: dict[str, torch.Tensor] = {}

    def on_output(self, name: str, output: torch.Tensor) -> None:
        self.outputs[name] = output
