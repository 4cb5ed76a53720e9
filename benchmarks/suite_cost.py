"""What a workflow design costs, from the runs it made: the pruning jobs' wall seconds (Snakemake's benchmark files
beside results/) summed per model and method, and the wall time that sum implies on N cores. For sizing a config
or a part (results/<dataset>/<model>/runs.txt lists a part's runs) before running it again elsewhere.

    python benchmarks/suite_cost.py results/cifar10jpg/resnet20/runs.txt --cores 2
"""

import argparse
from pathlib import Path

import pandas as pd


def job_seconds(metrics_paths: list[str]) -> pd.DataFrame:
    """One row per run: dataset, model, method, target, samples, seed and the job's wall seconds."""
    rows = []
    for path in metrics_paths:
        run = Path(path).relative_to("results")
        dataset, model, method, target, samples, seed = run.parts[:6]
        benchmark = Path("results/benchmarks") / run.parent / "prune.tsv"
        seconds = float(pd.read_csv(benchmark, sep="\t")["s"].iloc[-1]) if benchmark.is_file() else float("nan")
        rows.append({"dataset": dataset, "model": model, "method": method, "target": float(target),
                     "samples": int(samples.removeprefix("n")), "seed": int(seed.removeprefix("s")),
                     "seconds": seconds})
    return pd.DataFrame(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help="runs.txt files (one metrics.json path per line)")
    p.add_argument("--cores", type=int, default=2, help="cores the estimate assumes (one job per core)")
    args = p.parse_args()
    paths = [line for f in args.runs for line in f.read_text().split() if line]
    jobs = job_seconds(paths)
    missing = int(jobs["seconds"].isna().sum())
    by_method = jobs.groupby(["model", "method"])["seconds"].agg(["count", "sum", "mean"]).round(1)
    print(by_method.sort_values("sum", ascending=False).to_string())
    total = jobs["seconds"].sum()
    print(f"\n{len(jobs)} pruning jobs ({missing} without a benchmark file), {total / 60:.1f} job-minutes: at least "
          f"{total / 60 / args.cores:.1f} min of wall time on {args.cores} cores, one job per core (the longest job: "
          f"{jobs['seconds'].max() / 60:.1f} min)")


if __name__ == "__main__":
    main()
