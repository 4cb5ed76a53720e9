"""What a model needs to know about its data, independent of where the data lives."""

from dataclasses import asdict, dataclass

import torch


@dataclass(frozen=True)
class DataSpec:
    """Input channels, square image size and number of classes of a dataset."""

    name: str
    in_channels: int
    image_size: int
    num_classes: int

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "DataSpec":
        return cls(**{k: d[k] for k in ("name", "in_channels", "image_size", "num_classes")})


def example_input(spec: DataSpec, device: torch.device | str = "cpu") -> torch.Tensor:
    """One blank image of the spec's shape: what tracing, MACs counting, export and latency need to run a model."""
    return torch.zeros(1, spec.in_channels, spec.image_size, spec.image_size, device=device)
