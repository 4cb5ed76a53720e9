"""VGG with BatchNorm for small images (Simonyan & Zisserman, ICLR 2015; CIFAR variant used by pruning papers).

Max-pools stop once the feature map would shrink below 1×1, so the same network builds for 28×28 digits and
32×32 CIFAR images; a global average pool feeds one linear classifier.
"""

from torch import Tensor, nn

from psp.data.spec import DataSpec
from psp.models._registry import register_model

__all__ = ["CifarVGG"]

VGG19 = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
VGG_TINY = (8, "M", 16, "M", 32, "M")


class CifarVGG(nn.Module):
    def __init__(self, cfg: tuple, data: DataSpec, width_mult: float = 1.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels, size = data.in_channels, data.image_size
        for v in cfg:
            if v == "M":
                if size >= 2:
                    layers.append(nn.MaxPool2d(2))
                    size //= 2
                continue
            out = max(1, int(v * width_mult))
            layers += [nn.Conv2d(channels, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            channels = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, data.num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.pool(self.features(x)).flatten(1))


@register_model(tiny={"width_mult": 0.125})
def vgg19_cifar(data: DataSpec, width_mult: float = 1.0) -> CifarVGG:
    """VGG-19 with BatchNorm (20 M parameters at full width)."""
    return CifarVGG(VGG19, data, width_mult)


@register_model
def vgg_tiny(data: DataSpec, width_mult: float = 1.0) -> CifarVGG:
    """A three-conv VGG for the embedded default and tests."""
    return CifarVGG(VGG_TINY, data, width_mult)
