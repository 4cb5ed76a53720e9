"""Forward hooks on the layers a loss needs: collecting their outputs, or (``LayerHooks``) doing something else with
each as it is made."""

from collections.abc import Callable, Collection

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
    """``with LayerTaps(model, names) as taps: model(x)`` leaves ``taps.outputs[name]`` for each named layer.

    An output is held as the tensor the layer returned, so an operation after it that changes it in place
    (``nn.ReLU(inplace=True)`` after a BatchNorm, as in VGG and torchvision's ResNets) changes what is held:
    :meth:`changed` names such layers after the pass, and ``copies`` names layers whose outputs are copied as they
    are made (:func:`layer_outputs` does both)."""

    def __init__(self, model: nn.Module, names: list[str], copies: Collection[str] = ()) -> None:
        super().__init__(model, names)
        self.copies = set(copies)
        self.outputs: dict[str, torch.Tensor] = {}
        self._versions: dict[str, int] = {}

    def on_output(self, name: str, output: torch.Tensor) -> None:
        self.outputs[name] = output.clone() if name in self.copies else output
        self._versions[name] = self.outputs[name]._version

    def changed(self) -> list[str]:
        """Layers whose held output was changed in place after the layer made it."""
        return [n for n, t in self.outputs.items() if t._version != self._versions[n]]


def layer_outputs(model: nn.Module, names: list[str], x: torch.Tensor,
                  copies: set[str] | None = None) -> tuple[dict[str, torch.Tensor], set[str]]:
    """The named layers' outputs as each layer made them, and the layers that needed a copy for that. ``copies``
    (from an earlier call on the same model) says which to copy; without it, a pass finds them and, if there are
    any, a second pass copies them."""
    with LayerTaps(model, names, copies or ()) as taps:
        model(x)
    if copies is None and (changed := taps.changed()):
        copies = set(changed)
        with LayerTaps(model, names, copies) as taps:
            model(x)
    return taps.outputs, copies or set()
