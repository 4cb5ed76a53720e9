"""Time the pruned models of one (dataset, model, seed) and their dense model, alone on the machine, at batch 1 and
64, in eager PyTorch and ONNX Runtime.

One process loads each ``model.pt`` beside a ``metrics.json`` (and each distinct dense checkpoint once) and times
the pair back to back (``psp.latency.time_pair``) with all of the job's threads. The dense model is timed again right
before each pruned model: on a shared or virtual machine the speed drifts over minutes (seen here: a dense ResNet-56
timed once at the start made every later speed-up 0.6-0.7x of its back-to-back value), and a ratio of two timings
taken together cancels the drift. Each architecture is exported to ONNX once and every run of it gets its own weights;
every run's ONNX outputs are checked against PyTorch's.

Latency depends on the architecture, not on the weights' values: the methods that share a selection (the controls,
the post-training baselines at one target and seed) make the same architecture, which is timed once, and its other
runs take that pair's figures, naming the run that was timed in ``latency_timed_with`` (each still gets its own ONNX
check). The job times each distinct architecture instead of every run.
"""

import json
from pathlib import Path

import pandas as pd
import torch

from psp.checkpoint import load_model
from psp.data.spec import example_input
from psp.export import ArchitectureExports, checked_difference, ort_session
from psp.latency import time_pair
from psp.report.summaries import start_log


def main(smk) -> None:
    log = start_log(smk.log[0])
    torch.set_num_threads(smk.threads)
    dense_models: dict[str, torch.nn.Module] = {}
    exports = ArchitectureExports()
    rows = []
    timed_first: dict[str, tuple[str, dict]] = {}  # architecture -> the run timed for it, and its figures
    for path in smk.params.metrics:  # each inside one of the batch folders the job reads
        metrics = json.loads(Path(path).read_text())
        pruned = load_model(Path(path).with_name("model.pt"))
        settings = metrics["settings"]
        if settings["checkpoint"] not in dense_models:
            dense_models[settings["checkpoint"]] = load_model(settings["checkpoint"], settings["model"], pruned.data,
                                                              settings["normalize"]).model.eval()
        dense, model, example = dense_models[settings["checkpoint"]], pruned.model.eval(), example_input(pruned.data)
        key = settings["checkpoint"] + ArchitectureExports.key(model, example)
        if key in timed_first:
            timed_with, timed = timed_first[key]
            session = ort_session(exports(model, example), smk.threads)
            timed = timed | {"onnx_difference": checked_difference(model, session, example)}
        else:
            timed_with, timed = path, time_pair(dense, model, example, exports)
            timed_first[key] = path, timed
        rows.append({"path": path, **{f"{k}_alone": v for k, v in timed.items()}, "latency_threads": smk.threads,
                     "latency_timed_with": timed_with})
    pd.DataFrame(rows).to_csv(smk.output[0], index=False)
    log.info("timed %d architectures of %d pruned models, each beside its dense model (%d distinct), with %d threads, "
             "in eager PyTorch and ONNX Runtime (%d architectures exported)", len(timed_first), len(rows),
             len(dense_models), smk.threads, exports.exports)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821  (injected by Snakemake's script directive)
