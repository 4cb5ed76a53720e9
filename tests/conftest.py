"""Shared fixtures: one tiny trained base model per session, the embedded data set, prune contexts.

Everything runs on CPU with one thread (the test machines are small and shared); nothing reads the network.
"""

from collections.abc import Callable
from types import SimpleNamespace

import pytest
import torch

torch.set_num_threads(1)

BASE_MODEL = "resnet8_tiny"
BASE_EPOCHS = 3


@pytest.fixture(scope="session", autouse=True)
def cache_dir(tmp_path_factory):
    """Decoded-image caches go to a folder of this session (subprocesses inherit it), never the home folder."""
    path = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PSP_CACHE_DIR", str(path))
        yield path


@pytest.fixture(scope="session")
def mnist():
    """The embedded mnist5k bundle (loaded once; tests must not modify it)."""
    from psp.data.datasets import load_data

    return load_data("mnist5k")


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> SimpleNamespace:
    """A resnet8_tiny trained for a few epochs on mnist5k, saved as the suite's own model.pt."""
    from psp import pipeline
    from psp.train import TrainSettings

    out = tmp_path_factory.mktemp("base")
    opts = pipeline.RunOptions(threads=1, device="cpu", latency_repeats=2)
    metrics = pipeline.train_run(BASE_MODEL, "mnist5k", BASE_EPOCHS, 0, out, opts,
                                 TrainSettings(lr=0.1, batch_size=128))
    torch.set_num_threads(1)
    return SimpleNamespace(dir=out, checkpoint=out / "model.pt", metrics=metrics)


@pytest.fixture(scope="session")
def fresh_base(trained) -> Callable[[], torch.nn.Module]:
    """A fresh copy of the trained base model, in eval mode, each time it is called."""
    from psp.checkpoint import load_model

    return lambda: load_model(trained.checkpoint).model.eval()


@pytest.fixture(scope="session")
def make_context(mnist) -> Callable:
    """Build a PruneContext over a model and calibration images drawn from the mnist5k training split."""
    from psp.data.calibration import draw_calibration
    from psp.data.loaders import calibration_images
    from psp.data.normalization import normalizer
    from psp.methods import PruneContext
    from psp.settings import PruneSettings

    def build(model: torch.nn.Module, normalize: str = "mnist", bundle=None, **settings: object):
        bundle = bundle or mnist
        s = PruneSettings(**settings)
        norm = normalizer(normalize, bundle.spec.in_channels)
        indices = draw_calibration(len(bundle.train), s.samples, s.seed, s.validation_size)
        images = calibration_images(bundle.train, indices, norm)
        spec = bundle.spec
        example = torch.zeros(1, spec.in_channels, spec.image_size, spec.image_size)
        return PruneContext(model=model.eval(), example=example, settings=s, device=torch.device("cpu"),
                            normalize=norm, calibration=lambda: images)

    return build


@pytest.fixture(scope="session")
def top1_of(mnist) -> Callable:
    """Top-1 accuracy of a model on the mnist5k test split."""
    from psp.data.loaders import batches
    from psp.data.normalization import normalizer
    from psp.metrics import accuracy

    def top1(model: torch.nn.Module, normalize: str = "mnist") -> float:
        return accuracy(model, batches(mnist.test, 500, normalizer(normalize, 1)))["top1"]

    return top1
