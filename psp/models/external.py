"""Adapters for torchvision (``tv:<name>``) and timm (``timm:<name>``) classification models.

Two families get a prunable form with the same outputs and state dict: ShuffleNetV2's split and shuffle, and
GhostNet's output slice, become ``ChannelGather`` maps (see ``psp.models.gather``).

Weights are never downloaded implicitly: pretrained weights come from a user checkpoint (``psp eval --checkpoint``)
or, for torchvision, from ``pretrained=True``, which a user must ask for explicitly.
"""

from torch import nn

from psp.data.spec import DataSpec
from psp.errors import UsageError
from psp.models.shufflenet import gather_shufflenet_blocks


def _split(name: str) -> tuple[str, str]:
    source, _, arch = name.partition(":")
    return source, arch


def exists(name: str) -> bool:
    source, arch = _split(name)
    if source == "tv":
        import torchvision

        return arch in torchvision.models.list_models(module=torchvision.models)
    import timm

    return timm.is_model(arch)


def _match_input_channels(model: nn.Module, in_channels: int) -> None:
    """Replace the stem conv of a 3-channel torchvision model so that grey images fit."""
    for parent in model.modules():
        for child_name, child in parent.named_children():
            if isinstance(child, nn.Conv2d):
                if child.in_channels != in_channels:
                    setattr(parent, child_name, nn.Conv2d(
                        in_channels, child.out_channels, child.kernel_size, child.stride, child.padding,
                        child.dilation, 1, child.bias is not None))
                return


def create(name: str, data: DataSpec, pretrained: bool = False, **kwargs: object) -> nn.Module:
    source, arch = _split(name)
    if source == "tv":
        import torchvision

        weights = "DEFAULT" if pretrained else None
        if pretrained and data.num_classes != 1000:
            raise UsageError(f"pretrained torchvision weights have 1000 classes, data {data.name!r} has "
                             f"{data.num_classes}")
        model = torchvision.models.get_model(arch, weights=weights, num_classes=data.num_classes, **kwargs)
        _match_input_channels(model, data.in_channels)
        return gather_shufflenet_blocks(model)
    import timm

    from psp.models.ghostnet import gather_ghost_modules

    return gather_ghost_modules(timm.create_model(arch, pretrained=pretrained, num_classes=data.num_classes,
                                                  in_chans=data.in_channels, **kwargs))
