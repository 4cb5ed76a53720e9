"""Time one PSP phase-1 training step in NCHW and channels-last, with and without the FLOP counter, interleaved.

Builds an option-A CIFAR ResNet (random weights: the arithmetic does not depend on them), caches its layer outputs
on random images as PSP does, and times full-width reconstruction steps (train-mode BatchNorm, holistic loss, Adam),
each configuration in turn, round after round, so that the machine's drift falls on all of them alike. Prints the
median seconds per step of each and its ratio to NCHW without the counter; writes ``OUT/psp_layout.json``.

    python benchmarks/psp_layout.py --depth 56 --rounds 5 --steps 4 --threads 2
"""

import argparse
import contextlib
import copy
import json
import statistics
import time
from pathlib import Path

CONFIGS = [("contiguous", False), ("contiguous", True), ("channels_last", False), ("channels_last", True)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="example:\n" + __doc__.split("\n\n")[-1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--depth", type=int, default=56, help="ResNet depth, 6n+2 (default: %(default)s)")
    p.add_argument("--images", type=int, default=512, help="calibration images (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--rounds", type=int, default=5, help="rounds over the configurations (default: %(default)s)")
    p.add_argument("--steps", type=int, default=4, help="timed steps per configuration and round")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path("results/benchmarks/psp_layout"))
    args = p.parse_args()

    import torch  # after parsing: --help needs no torch

    from psp.compute import FlopCount
    from psp.models.resnet_cifar_a import CifarResNetA
    from psp.reconstruct import layout
    from psp.reconstruct.loss import HolisticLoss
    from psp.reconstruct.taps import reconstruction_layers
    from psp.reconstruct.targets import TargetStore

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dense = CifarResNetA(args.depth).eval()
    layers = reconstruction_layers(dense)
    images = torch.randn(args.images, 3, 32, 32)
    setups = {}
    for fmt in ("contiguous", "channels_last"):
        original = layout.to_memory_format(copy.deepcopy(dense), fmt)
        laid = layout.to_layout(images, fmt)
        store = TargetStore(original, laid, layers, 2**40, args.batch_size)
        model = copy.deepcopy(original).train()
        setups[fmt] = (model, laid, store, torch.optim.Adam(model.parameters(), lr=1e-3))

    def step(fmt: str, i: int) -> None:
        model, laid, store, optimizer = setups[fmt]
        idx = torch.arange(i * args.batch_size, (i + 1) * args.batch_size) % len(laid)
        with HolisticLoss(model, layers, store.batch(idx)) as terms:
            model(laid[idx])
        loss = terms.total()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    times: dict[tuple, list[float]] = {c: [] for c in CONFIGS}
    for fmt, _ in CONFIGS:  # warm-up: first-touch allocations, oneDNN's kernel choice
        for i in range(2):
            step(fmt, i)
    for _ in range(args.rounds):
        for fmt, counted in CONFIGS:
            with FlopCount() if counted else contextlib.nullcontext():
                start = time.perf_counter()
                for i in range(args.steps):
                    step(fmt, i)
                times[(fmt, counted)].append((time.perf_counter() - start) / args.steps)
    base = statistics.median(times[("contiguous", False)])
    rows = [{"memory_format": fmt, "flop_counter": counted, "median_step_s": statistics.median(t),
             "min_step_s": min(t), "max_step_s": max(t), "x_nchw": statistics.median(t) / base}
            for (fmt, counted), t in times.items()]
    print("| layout | FLOP counter | median s/step | min | max | × NCHW, no counter |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['memory_format']} | {'on' if r['flop_counter'] else 'off'} | {r['median_step_s']:.3f} | "
              f"{r['min_step_s']:.3f} | {r['max_step_s']:.3f} | {r['x_nchw']:.2f} |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "psp_layout.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                                          "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
