"""A model's per-layer widths as plain data, and rebuilding a dense model at those widths.

Like timm's pruned-model files: a pruned model is saved as the registry name, this spec and a state dict, never as
pickled modules. Rebuilding sets each layer's widths, resets the maps of option-A shortcuts and channel gathers, and
gives every parameter and buffer the shape of the state dict it will load.
"""

import torch
from torch import nn

from psp.models.gather import ChannelGather
from psp.models.shortcut import ChannelPadShortcut

ChannelSpec = dict[str, dict[str, object]]


def channel_spec(model: nn.Module) -> ChannelSpec:
    spec: ChannelSpec = {}
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            spec[name] = {"in": m.in_channels, "out": m.out_channels, "groups": m.groups}
        elif isinstance(m, nn.Linear):
            spec[name] = {"in": m.in_features, "out": m.out_features}
        elif isinstance(m, nn.BatchNorm2d):
            spec[name] = {"out": m.num_features}
        elif isinstance(m, nn.LayerNorm):
            spec[name] = {"shape": list(m.normalized_shape)}
        elif isinstance(m, ChannelGather):
            spec[name] = {"in": m.in_channels, "index": m.index.tolist()}
        elif isinstance(m, ChannelPadShortcut):
            spec[name] = {"in": m.in_channels, "out": m.out_channels, "src": m.src.tolist(), "dst": m.dst.tolist()}
    return spec


def _resize(m: nn.Module, s: dict) -> None:
    """Set the width attributes a forward pass reads (the module keeps its class, activation, padding, ...)."""
    if isinstance(m, nn.Conv2d):
        m.in_channels, m.out_channels, m.groups = s["in"], s["out"], s["groups"]
    elif isinstance(m, nn.Linear):
        m.in_features, m.out_features = s["in"], s["out"]
    elif isinstance(m, nn.BatchNorm2d):
        m.num_features = s["out"]
    elif isinstance(m, nn.LayerNorm):
        m.normalized_shape = tuple(s["shape"])
    elif isinstance(m, ChannelGather):
        m.set_map(s["in"], s["index"])
    else:
        m.set_map(s["in"], s["out"], s["src"], s["dst"])


def apply_channel_spec(model: nn.Module, spec: ChannelSpec, shapes: dict[str, torch.Size]) -> nn.Module:
    """Resize ``model`` in place to the widths in ``spec`` and its parameters and buffers to ``shapes`` (those of
    the state dict to be loaded; a pruned model can hold tensors outside any layer, such as a layer scale).
    Raises ``KeyError`` or ``AttributeError`` on a foreign spec."""
    for name, s in spec.items():
        _resize(model.get_submodule(name), s)
    for key, shape in shapes.items():
        owner, _, attr = key.rpartition(".")
        module = model.get_submodule(owner)
        tensor = getattr(module, attr)
        if tensor is None or tensor.shape == shape:
            continue
        if isinstance(tensor, nn.Parameter):
            setattr(module, attr, nn.Parameter(tensor.new_empty(shape), requires_grad=tensor.requires_grad))
        else:
            module._buffers[attr] = tensor.new_empty(shape)
    return model
