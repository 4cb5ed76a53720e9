"""Model registry and architectures; importing this package registers every built-in model."""

from psp.models import resnet_cifar, resnet_cifar_a, vgg_cifar  # noqa: F401  (registration side effects)
from psp.models._registry import (
    create_model,
    default_normalization,
    is_model,
    list_models,
    register_model,
    tiny_options,
)
from psp.models.shortcut import ChannelPadShortcut

__all__ = ["ChannelPadShortcut", "create_model", "default_normalization", "is_model", "list_models",
           "register_model", "tiny_options"]
