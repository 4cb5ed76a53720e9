"""Q5 benchmark: AdaPrune and gAP at growing per-layer budgets, with and without BatchNorm re-estimation.

The PSP paper motivates PSP by layer-wise reconstruction "not giving satisfying results" for structured pruning; a
reviewer asked whether it was given too small a budget. This runs the registered ``adaprune`` and ``gap`` on one
checkpoint at growing ``--layer-epochs`` (same selection, same calibration images), and evaluates each result as it
is and after BatchNorm re-estimation on the same images: exactly ``adaprune_bn`` / ``gap_bn``, whose weights equal
the plain method's (tests/test_controls.py), so one fit gives both rows. Budgets keep doubling past the last given
one while any variant still gains at least ``--rise`` points, up to ``--max-epochs``. Prints a table and writes
``OUT/layerwise_budget.json``, ``.md`` and ``.png``.

    python benchmarks/layerwise_budget.py --threads 2
"""

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import matplotlib
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from psp.checkpoint import load_model  # noqa: E402
from psp.data.calibration import draw_calibration  # noqa: E402
from psp.data.datasets import TensorImages, load_data  # noqa: E402
from psp.data.loaders import batches  # noqa: E402
from psp.data.normalization import normalizer  # noqa: E402
from psp.methods import PruneContext, get_method  # noqa: E402
from psp.metrics import accuracy  # noqa: E402
from psp.reconstruct.batchnorm import recalibrate_batchnorm  # noqa: E402
from psp.runtime import configure  # noqa: E402
from psp.settings import PruneSettings  # noqa: E402


def decoded(split: torch.utils.data.Dataset) -> TensorImages:
    """The test split decoded once (every budget evaluates on it twice)."""
    images = torch.stack([(split.image(i) * 255).round().to(torch.uint8) for i in range(len(split))])
    return TensorImages(images, torch.tensor([split.label(i) for i in range(len(split))]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnet20")
    p.add_argument("--checkpoint", default="../shared/models/cifar10/resnet20.th")
    p.add_argument("--data", default="imagefolder:../shared/data/cifar10-jpg")
    p.add_argument("--normalize", default="imagenet")
    p.add_argument("--target", type=float, default=2.1)
    p.add_argument("--samples", type=int, default=512)
    p.add_argument("--seeds", nargs="+", type=int, default=[0], help="calibration draws (as `psp prune --seed`)")
    p.add_argument("--methods", nargs="+", default=["adaprune", "gap"])
    p.add_argument("--budgets", nargs="+", type=int, default=[2, 10, 50])
    p.add_argument("--rise", type=float, default=1.0, help="points a doubled budget must gain to keep doubling")
    p.add_argument("--max-epochs", type=int, default=200)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path("results/benchmarks/layerwise_budget"))
    args = p.parse_args()

    device = configure(args.threads, 0, "cpu")
    bundle = load_data(args.data)
    loaded = load_model(args.checkpoint, args.model, bundle.spec, args.normalize)
    norm = normalizer(loaded.normalize, bundle.spec.in_channels)
    test = decoded(bundle.test)

    def top1(model: torch.nn.Module) -> float:
        return 100 * accuracy(model.eval(), batches(test, 500, norm))["top1"]

    def fit(method: str, epochs: int, seed: int) -> list[dict]:
        settings = PruneSettings(target_macs=args.target, samples=args.samples, seed=seed, layer_epochs=epochs)
        ctx = PruneContext.build(loaded.model, bundle, settings, normalize=loaded.normalize,
                                 indices=draw_calibration(len(bundle.train), args.samples, seed), device=device,
                                 uses=get_method(method).uses)
        torch.manual_seed(seed)
        start = time.perf_counter()
        result = get_method(method).run(ctx)
        seconds = time.perf_counter() - start
        plain = top1(result.model)
        recalibrated = copy.deepcopy(result.model)
        recalibrate_batchnorm(recalibrated, ctx.calibration(), settings.batch_size)
        return [{"method": method, "seed": seed, "layer_epochs": epochs, "top1": plain, "seconds": seconds},
                {"method": f"{method}_bn", "seed": seed, "layer_epochs": epochs, "top1": top1(recalibrated),
                 "seconds": seconds}]

    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    for seed, method in ((seed, method) for seed in args.seeds for method in args.methods):
        budgets, last = list(args.budgets), None
        while budgets:
            epochs = budgets.pop(0)
            pair = fit(method, epochs, seed)
            rows += pair
            print(json.dumps(pair), flush=True)
            (args.out / "layerwise_budget.json").write_text(json.dumps(rows, indent=2))
            gain = max(r["top1"] - q["top1"] for r, q in zip(pair, last, strict=True)) if last else 0.0
            rising = gain >= args.rise
            if not budgets and rising and 2 * epochs <= args.max_epochs:
                budgets.append(2 * epochs)
            last = pair
    dense = top1(loaded.model)
    lines = [f"# AdaPrune and gAP against their per-layer budget ({args.model}, {args.target}× fewer MACs, "
             f"{args.samples} images, seeds {', '.join(map(str, args.seeds))}; dense {dense:.2f} %)", "",
             "| method | seed | epochs per layer | top-1 % | fit seconds |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['method']} | {r['seed']} | {r['layer_epochs']} | {r['top1']:.2f} | {r['seconds']:.1f} |"
              for r in rows]
    (args.out / "layerwise_budget.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))

    fig, ax = plt.subplots(figsize=(6, 4))
    for name in dict.fromkeys(r["method"] for r in rows):
        budgets = sorted({r["layer_epochs"] for r in rows if r["method"] == name})
        means = [statistics.mean(r["top1"] for r in rows if r["method"] == name and r["layer_epochs"] == b)
                 for b in budgets]
        ax.plot(budgets, means, marker="o", linestyle="--" if name.endswith("_bn") else "-", label=name)
    ax.axhline(dense, color="black", linewidth=0.8, label="dense")
    ax.set(xscale="log", xlabel="epochs per layer", ylabel="top-1 % (mean over seeds)",
           title=f"Layer-wise reconstruction budget, {args.model} at {args.target}×")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out / "layerwise_budget.png", dpi=120)


if __name__ == "__main__":
    main()
