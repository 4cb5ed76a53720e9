"""What counting a method's FLOPs costs: the same run with and without the counter (``psp.compute.FlopCount``),
alternating in one process so that both sides see the same machine, and PyTorch's operator-level counter
(``torch.utils.flop_counter.FlopCounterMode``, the alternative it replaced) for scale. Reports each side's median
method seconds over ``--repeats`` and the counter's overhead in percent, and checks that both counters agree. Writes
``OUT/flop_counter_cost.json``.

    python benchmarks/flop_counter_cost.py --checkpoint results/mnist5k/resnet8_tiny/base/model.pt --method psp
"""

import argparse
import contextlib
import json
import statistics
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", type=Path, default=Path("results/mnist5k/resnet8_tiny/base/model.pt"))
    p.add_argument("--data", default=None, help="data spec (default: the checkpoint's)")
    p.add_argument("--method", default="psp")
    p.add_argument("--target-macs", type=float, default=2.0)
    p.add_argument("--samples", type=int, default=256)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("results/benchmarks/flop_counter_cost"))
    args = p.parse_args()
    import torch  # after parsing: --help needs no torch
    from torch.utils.flop_counter import FlopCounterMode

    from psp.compute import FlopCount
    from psp.methods import PruneContext, get_method
    from psp.pipeline import RunOptions, calibration_indices, load_for_run
    from psp.runtime import configure
    from psp.settings import PruneSettings

    configure(args.threads, 0, "cpu")
    loaded, bundle, _ = load_for_run(str(args.checkpoint), None, args.data, None, RunOptions(threads=args.threads))
    settings = PruneSettings(target_macs=args.target_macs, samples=args.samples)
    method = get_method(args.method)
    indices = calibration_indices(settings, bundle)
    counters = {"no counter": contextlib.nullcontext, "FlopCount (layer hooks)": FlopCount,
                "FlopCounterMode (every operator)": lambda: FlopCounterMode(display=False)}
    seconds: dict[str, list[float]] = {name: [] for name in counters}
    totals: dict[str, int] = {}
    for _ in range(args.repeats):
        for name, make in counters.items():
            ctx = PruneContext.build(loaded.model, bundle, settings, normalize=loaded.normalize, indices=indices,
                                     uses=method.uses)
            torch.manual_seed(0)
            start = time.perf_counter()
            with make() as counter:
                method.run(ctx)
            seconds[name].append(time.perf_counter() - start)
            if counter is not None:
                totals[name] = counter.total if isinstance(counter, FlopCount) else counter.get_total_flops()
    base = statistics.median(seconds["no counter"])
    rows = [{"counter": name, "median_s": statistics.median(s), "min_s": min(s), "max_s": max(s),
             "overhead_pct": 100 * (statistics.median(s) / base - 1), "flops": totals.get(name)}
            for name, s in seconds.items()]
    print(f"{args.method} on {loaded.name}, {args.repeats} alternating repeats, {args.threads} thread(s):")
    for row in rows:
        print(f"  {row['counter']:34s} median {row['median_s']:.2f} s (min {row['min_s']:.2f}, max {row['max_s']:.2f})"
              f"  overhead {row['overhead_pct']:+.1f} %  FLOPs {row['flops']}")
    counts = {v for v in totals.values()}
    print("the counters agree" if len(counts) == 1 else f"the counters DISAGREE: {totals}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "flop_counter_cost.json").write_text(json.dumps({"method": args.method, "model": loaded.name,
                                                                 "threads": args.threads, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
