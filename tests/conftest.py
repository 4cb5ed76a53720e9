"""Shared fixtures: one tiny trained base model per session, the embedded data set, prune contexts, models with
random BatchNorm.

Everything runs on CPU with one thread (the test machines are small and shared); nothing reads the network.
"""

import fcntl
import json
import os
from collections.abc import Callable
from types import SimpleNamespace

import pandas as pd
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
    """A resnet8_tiny trained for a few epochs on mnist5k, saved as the suite's own model.pt. Trained once per test
    session (11 s): the first pytest-xdist worker to ask trains it, the others wait for it and read the same files."""
    from psp import pipeline
    from psp.train import TrainSettings

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the folder that holds every worker's own
    out = shared / "trained_base"
    with open(shared / "trained_base.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "metrics.json").is_file():  # written last, atomically
            opts = pipeline.RunOptions(threads=1, device="cpu", latency_repeats=2)
            pipeline.train_run(BASE_MODEL, "mnist5k", BASE_EPOCHS, 0, out, opts, TrainSettings(lr=0.1, batch_size=128))
    torch.set_num_threads(1)
    metrics = json.loads((out / "metrics.json").read_text())
    return SimpleNamespace(dir=out, checkpoint=out / "model.pt", metrics=metrics)


@pytest.fixture(scope="session")
def fresh_base(trained) -> Callable[[], torch.nn.Module]:
    """A fresh copy of the trained base model, in eval mode, each time it is called."""
    from psp.checkpoint import load_model

    return lambda: load_model(trained.checkpoint).model.eval()


@pytest.fixture(scope="session")
def make_context(mnist) -> Callable:
    """Build a PruneContext over a model and the calibration images its settings draw from the mnist5k training
    split, as ``psp prune`` would."""
    from psp.methods import PruneContext
    from psp.pipeline import calibration_indices
    from psp.settings import PruneSettings

    def build(model: torch.nn.Module, **settings: object):
        s = PruneSettings(**settings)
        return PruneContext.build(model, mnist, s, normalize="mnist", indices=calibration_indices(s, mnist))

    return build


def _randomise_bn(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """BatchNorm statistics and affine parameters far from their defaults, so that BN slicing errors show."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.2)
    return model


@pytest.fixture(scope="session")
def random_model() -> Callable:
    """Build a model (at its tiny width, ``psp.models.tiny_options``, unless ``kwargs`` say otherwise) with BatchNorm
    far from its defaults, in eval mode, and a random batch of 4 for it: what removal and export are checked on.
    ``spec`` defaults to CIFAR-10's shape; the same ``seed`` gives the same model and batch."""
    from psp.data.spec import DataSpec
    from psp.models import create_model, tiny_options

    def build(name: str, spec: DataSpec = DataSpec("cifar10", 3, 32, 10), *, seed: int = 0,
              **kwargs: object) -> tuple[torch.nn.Module, torch.Tensor]:
        torch.manual_seed(seed)
        model = _randomise_bn(create_model(name, spec, **(tiny_options(name) | kwargs)), seed).eval()
        example = torch.randn(4, spec.in_channels, spec.image_size, spec.image_size,
                              generator=torch.Generator().manual_seed(seed))
        return model, example

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


@pytest.fixture(scope="session")
def ladder_runs() -> Callable[[dict], pd.DataFrame]:
    """Runs of budget ladders, ``{method: [(budget, gflops, top1), ...]}``, on three seeds (top-1 jittered by ±0.1
    around the given mean), at one MACs target of one setup: what psp.report.ladders reads from runs.csv."""

    def build(ladders: dict[str, list[tuple[float, float, float]]]) -> pd.DataFrame:
        rows = []
        for method, rungs in ladders.items():
            for budget, gflops, top1 in rungs:
                for seed, jitter in zip([0, 1, 2], [0.0, 0.1, -0.1], strict=True):
                    rows.append({"dataset": "d", "model": "net", "method": method, "target": 2.0,
                                 "target_kind": "macs", "seed": seed, "budget": budget, "method_flops": gflops * 1e9,
                                 "top1_pct": top1 + jitter, "seconds": gflops})
        return pd.DataFrame(rows)

    return build
