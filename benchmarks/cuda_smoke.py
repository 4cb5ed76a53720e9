"""Smoke-test the GPU path of the library: PSP and two baselines on a torchvision ResNet-18, then latency.

Random weights and synthetic images (nothing to download), so it checks that every step runs on the device —
selection, removal, PSP's two phases, AdaPrune's layer fits, L1's fine-tuning with bfloat16 autocast, CUDA-
synchronised latency — not accuracy. It also runs on CPU (``--device cpu``) for a dry check.

    python benchmarks/cuda_smoke.py --device cuda --out results/benchmarks/cuda_smoke
"""

import argparse
import json
import time
from pathlib import Path

import torch

from psp.data.datasets import DataBundle, TensorImages
from psp.data.loaders import batches
from psp.data.normalization import normalizer
from psp.data.spec import DataSpec
from psp.latency import latency_profile
from psp.methods import PruneContext, get_method, load_method_modules
from psp.metrics import accuracy, count_macs
from psp.models import create_model
from psp.runtime import configure, provenance
from psp.settings import PruneSettings

METHODS = ("psp", "adaprune", "l1")


def synthetic_bundle(spec: DataSpec, n_train: int, n_test: int, seed: int) -> DataBundle:
    """Random uint8 images with random labels: enough to drive every code path, nothing to learn."""
    g = torch.Generator().manual_seed(seed)

    def split(n: int) -> TensorImages:
        images = torch.randint(0, 256, (n, spec.in_channels, spec.image_size, spec.image_size), generator=g,
                               dtype=torch.uint8)
        return TensorImages(images, torch.randint(0, spec.num_classes, (n,), generator=g))

    return DataBundle(spec, split(n_train), split(n_test), "imagenet")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--samples", type=int, default=256)
    p.add_argument("--target", type=float, default=2.0)
    p.add_argument("--out", type=Path, default=Path("results/benchmarks/cuda_smoke"))
    args = p.parse_args()
    load_method_modules(None)
    device = configure(None, 0, args.device)
    spec = DataSpec("synthetic", 3, args.image_size, 10)
    bundle = synthetic_bundle(spec, n_train=2 * args.samples, n_test=args.samples, seed=0)
    norm = normalizer("imagenet", 3)
    dense = create_model("tv:resnet18", spec).to(device).eval()
    example = torch.zeros(1, 3, args.image_size, args.image_size, device=device)
    dense_latency = latency_profile(dense, example)
    rows = []
    for name in METHODS:
        settings = PruneSettings(target_macs=args.target, samples=args.samples, batch_size=64, penalty_epochs=2,
                                 rec_epochs=1, layer_epochs=1, epochs=1, train_subset=args.samples,
                                 amp=device.type == "cuda")
        method = get_method(name)
        ctx = PruneContext.build(dense, bundle, settings, normalize="imagenet", indices=list(range(args.samples)),
                                 device=device, uses=method.uses)
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        result = method.run(ctx)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        model = result.model.eval()
        on_device = {q.device.type for q in model.parameters()} == {device.type}
        top1 = accuracy(model, batches(bundle.test, 128, norm, device), device)["top1"]
        latency = latency_profile(model, example)
        rows.append({
            "method": name, "device": str(device), "parameters_on_device": on_device, "seconds": seconds,
            "macs_reduction": count_macs(dense, example) / count_macs(model, example),
            "top1_random_labels": top1, **latency,
            "speedup_b1": dense_latency["latency_b1"] / latency["latency_b1"],
            "speedup_b64": dense_latency["latency_b64"] / latency["latency_b64"],
            "peak_gpu_mib": torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None,
        })
        r = rows[-1]
        print(f"{name:9s} {r['device']:6s} on_device={on_device} {seconds:7.2f} s  MACs {r['macs_reduction']:.2f}x  "
              f"latency b1 {r['latency_b1'] * 1e3:.2f} ms b64 {r['latency_b64'] * 1e3:.2f} ms  "
              f"speed-up b1 {r['speedup_b1']:.2f}x b64 {r['speedup_b64']:.2f}x", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"rows": rows, "dense_latency": dense_latency, **provenance(device)}
    if device.type == "cuda":
        report["gpu"] = torch.cuda.get_device_name(device)
    (args.out / "cuda_smoke.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out / 'cuda_smoke.json'}")


if __name__ == "__main__":
    main()
