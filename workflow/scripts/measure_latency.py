"""Time the pruned models of one (dataset, model, seed) and their dense model, alone on the machine, at batch 1 and
64, in eager PyTorch and ONNX Runtime.

One process loads each ``model.pt`` beside a ``metrics.json`` (and each distinct dense checkpoint once) and times
the pair back to back (``psp.latency.time_pair``) with all of the job's threads. The dense model is timed again right
before each pruned model: on a shared or virtual machine the speed drifts over minutes (seen here: a dense ResNet-56
timed once at the start made every later speed-up 0.6-0.7x of its back-to-back value), and a ratio of two timings
taken together cancels the drift. Each architecture is exported to ONNX once and every run of it gets its own weights;
every run's ONNX outputs are checked against PyTorch's before it is timed.
"""

import json
from pathlib import Path

import pandas as pd
import torch

from psp.checkpoint import load_model
from psp.data.spec import example_input
from psp.export import ArchitectureExports
from psp.latency import time_pair
from psp.report.summaries import start_log


def main(smk) -> None:
    log = start_log(smk.log[0])
    torch.set_num_threads(smk.threads)
    dense_models: dict[str, torch.nn.Module] = {}
    exports = ArchitectureExports()
    rows = []
    for path in smk.params.metrics:  # each inside one of the batch folders the job reads
        metrics = json.loads(Path(path).read_text())
        pruned = load_model(Path(path).with_name("model.pt"))
        settings = metrics["settings"]
        if settings["checkpoint"] not in dense_models:
            dense_models[settings["checkpoint"]] = load_model(settings["checkpoint"], settings["model"], pruned.data,
                                                              settings["normalize"]).model.eval()
        timed = time_pair(dense_models[settings["checkpoint"]], pruned.model.eval(), example_input(pruned.data),
                          exports)
        rows.append({"path": path, **{f"{k}_alone": v for k, v in timed.items()}, "latency_threads": smk.threads})
    pd.DataFrame(rows).to_csv(smk.output[0], index=False)
    log.info("timed %d pruned models, each beside its dense model (%d distinct), with %d threads, in eager PyTorch "
             "and ONNX Runtime (%d architectures exported)", len(rows), len(dense_models), smk.threads,
             exports.exports)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821  (injected by Snakemake's script directive)
