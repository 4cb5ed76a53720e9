"""A model's per-layer widths as plain data, and rebuilding a dense model at those widths.

Like timm's pruned-model files: a pruned model is saved as the registry name, this spec and a state dict, never as
pickled modules. Rebuilding replaces each conv, linear and BatchNorm with one of the stored size, and resets the maps
of option-A shortcuts and channel gathers.
"""

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
        elif isinstance(m, ChannelGather):
            spec[name] = {"in": m.in_channels, "index": m.index.tolist()}
        elif isinstance(m, ChannelPadShortcut):
            spec[name] = {"in": m.in_channels, "out": m.out_channels, "src": m.src.tolist(), "dst": m.dst.tolist()}
    return spec


def _resized(m: nn.Module, s: dict) -> nn.Module:
    if isinstance(m, nn.Conv2d):
        return nn.Conv2d(s["in"], s["out"], m.kernel_size, m.stride, m.padding, m.dilation, s["groups"],
                         m.bias is not None, m.padding_mode)
    if isinstance(m, nn.Linear):
        return nn.Linear(s["in"], s["out"], m.bias is not None)
    if isinstance(m, nn.BatchNorm2d):
        return nn.BatchNorm2d(s["out"], m.eps, m.momentum, m.affine, m.track_running_stats)
    if isinstance(m, ChannelGather):
        m.set_map(s["in"], s["index"])
        return m
    m.set_map(s["in"], s["out"], s["src"], s["dst"])
    return m


def apply_channel_spec(model: nn.Module, spec: ChannelSpec) -> nn.Module:
    """Resize ``model``'s layers in place to the widths in ``spec``; raises ``KeyError`` on a foreign spec."""
    for name, s in spec.items():
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, child, _resized(parent.get_submodule(child), s))
    return model
