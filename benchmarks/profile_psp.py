"""Where PSP's time goes: one phase-1 and one phase-2 epoch on the public ResNet-56, timed part by part.

Mirrors ``psp.algorithms.psp`` step by step with timers (forward with hooks, holistic loss, backward, penalty,
optimiser step), plus the one-off costs (selection, target cache, removal). Prints a table and writes JSON.

    python benchmarks/profile_psp.py --threads 2
"""

import argparse
import copy
import json
import time
from collections import defaultdict
from pathlib import Path

import torch

from psp.checkpoint import load_model
from psp.data.calibration import draw_calibration
from psp.data.datasets import load_data
from psp.data.loaders import calibration_images
from psp.data.normalization import normalizer
from psp.methods import PruneContext
from psp.reconstruct.loss import holistic_loss
from psp.reconstruct.optim import reconstruction_optimizer
from psp.reconstruct.penalty import penalise_gradients
from psp.reconstruct.taps import LayerTaps, reconstruction_layers
from psp.reconstruct.targets import TargetStore
from psp.settings import PruneSettings
from psp.structure.removal import kept_outputs, remove_channels, selected_slices


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default="../shared/models/cifar10/resnet56.th")
    p.add_argument("--data", default="imagefolder:../shared/data/cifar10-jpg")
    p.add_argument("--samples", type=int, default=512)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--out", type=Path, default=Path("results/benchmarks/profile_psp.json"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    bundle = load_data(args.data)
    original = load_model(args.checkpoint, "resnet56", bundle.spec, "imagenet").model.eval()
    norm = normalizer("imagenet", 3)
    images = calibration_images(bundle.train, draw_calibration(len(bundle.train), args.samples, 0), norm)
    if args.channels_last:
        original = original.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    settings = PruneSettings(target_macs=2.1, samples=args.samples)
    example = torch.zeros(1, 3, 32, 32)
    ctx = PruneContext(original, example, settings, torch.device("cpu"), norm, lambda: images)
    t: dict[str, float] = defaultdict(float)

    def timed(key: str, fn, *a, **k):
        start = time.perf_counter()
        out = fn(*a, **k)
        t[key] += time.perf_counter() - start
        return out

    layers = reconstruction_layers(original)
    selection = timed("once: selection", ctx.select)
    store = timed("once: target cache", TargetStore, original, images, layers, 4096 * 2**20, 128)
    model = copy.deepcopy(original)
    slices = timed("once: penalty slices", lambda: list(selected_slices(model, selection, example)))

    def epoch(phase: str, model, store, optimizer, penalty) -> None:
        model.train()
        for start in range(0, len(images), 128):
            idx = torch.arange(start, min(start + 128, len(images)))
            with LayerTaps(model, layers) as taps:
                timed(f"{phase}: forward + hooks", model, images[idx])
            targets, denominators = timed(f"{phase}: read targets", store.batch, idx)
            loss = timed(f"{phase}: holistic loss", holistic_loss, taps.outputs, targets, denominators)
            optimizer.zero_grad(set_to_none=True)
            timed(f"{phase}: backward", loss.backward)
            if penalty:
                timed(f"{phase}: penalty", penalise_gradients, penalty, "replace", 0.02, 1e-3)
            timed(f"{phase}: optimiser step", optimizer.step)

    epoch("phase 1 epoch", model, store, torch.optim.Adam(model.parameters(), lr=1e-3), slices)
    model.eval()
    selection = timed("once: re-selection", ctx.select, model)
    keep = timed("once: kept channels", kept_outputs, model, selection, example)
    timed("once: removal", remove_channels, model, selection, example)
    store = timed("once: restrict targets", store.restrict, keep)
    epoch("phase 2 epoch", model, store, reconstruction_optimizer(model, layers, 1e-3, True), None)

    total = sum(t.values())
    for key, seconds in t.items():
        print(f"{key:36s} {seconds:8.2f} s  {100 * seconds / total:5.1f} %")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"threads": args.threads, "channels_last": args.channels_last,
                                    "samples": args.samples, "seconds": t}, indent=2))


if __name__ == "__main__":
    main()
