"""What each command does, as library calls: train a base model, evaluate a checkpoint, prune with a method,
export to ONNX.

Each writes its outputs atomically (temporary name, then rename), so an interrupted run leaves nothing half-written.
"""

import contextlib
import copy
import csv
import io
import json
import logging
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path

import torch
from torch import nn

from psp.checkpoint import LoadedModel, load_model, save_model
from psp.compute import FlopCount
from psp.data.calibration import draw_calibration, format_indices, read_indices, validation_indices
from psp.data.datasets import DataBundle, load_data
from psp.data.loaders import batches
from psp.data.normalization import normalizer
from psp.data.resize import resize_bundle
from psp.data.spec import example_input
from psp.errors import UsageError
from psp.export import TOLERANCE, check_export, export_onnx, with_metadata
from psp.latency import latency_profile, untimed
from psp.methods import Method, PruneContext, fixed_settings, get_method, load_method_modules
from psp.metrics import accuracy, count_macs, count_params
from psp.models import create_model
from psp.models.input_size import check_input_size
from psp.registry import budget_settings
from psp.runtime import (
    atomic_write_bytes,
    atomic_write_text,
    configure,
    import_what_optimizers_import,
    peak_memory_mib,
    provenance,
    release_freed_memory,
    reset_peak_memory,
    settings_hash,
    write_json,
)
from psp.settings import PruneSettings
from psp.structure.selection import select_channels
from psp.structure.support import check_prunable
from psp.train import TrainSettings, resolve_settings, train_model

log = logging.getLogger("psp")


@dataclass
class RunOptions:
    """Options shared by every command."""

    threads: int | None = None
    device: str = "auto"
    download: bool = False
    eval_batch: int = 256
    latency_repeats: int = 20  # 0: no timing here (the keys stay, as null), for runs timed later by another job
    eval_split: str = "test"  # or "validation": the carve of --validation-size training images, for tuning
    count_flops: bool = True  # False: method_flops is null (to measure the counter's own cost)


def evaluate(model: nn.Module, bundle: DataBundle, normalize: str, device: torch.device, opts: RunOptions,
             validation: list[int] | None = None) -> dict:
    """top1, top5, macs, params and latency at batch 1 and 64 of ``model`` on the test split (or on the
    ``validation`` indices of the training split, for tuning)."""
    model.to(device).eval()
    norm = normalizer(normalize, bundle.spec.in_channels)
    split = bundle.test if validation is None else bundle.train
    result = accuracy(model, batches(split, opts.eval_batch, norm, device, indices=validation), device)
    result["eval_split"] = "test" if validation is None else "validation"
    return result | size_and_latency(model, bundle, device, opts)


def size_and_latency(model: nn.Module, bundle: DataBundle, device: torch.device, opts: RunOptions) -> dict:
    """macs, params and latency at batch 1 and 64 in eager PyTorch and ONNX Runtime of ``model`` (in eval mode, on
    ``device``)."""
    example = example_input(bundle.spec, device)
    size = {"macs": count_macs(model, example), "params": count_params(model)}
    if opts.latency_repeats == 0:
        return size | untimed()
    return size | latency_profile(model, example, repeats=opts.latency_repeats)


def dense_reference(model: nn.Module, bundle: DataBundle, normalize: str, device: torch.device, opts: RunOptions,
                    validation: list[int] | None, dense_metrics: Path | None) -> dict:
    """The unpruned model's metrics: evaluated here, or its accuracy read from the metrics.json that ``psp eval`` or
    ``psp train`` wrote for it. A sweep prunes one base model hundreds of times, and evaluating it again in every run
    costs as much as evaluating the pruned model; MACs, params and latency are still measured here (cheap, and the
    speed-up needs both latencies from one process). The file is checked by MACs and split, which catches another
    architecture or width, not another checkpoint of the same architecture."""
    if dense_metrics is None:
        return evaluate(model, bundle, normalize, device, opts, validation)
    split = "test" if validation is None else "validation"
    try:
        reference = json.loads(Path(dense_metrics).read_text())
        top1, top5, macs = float(reference["top1"]), float(reference["top5"]), int(reference["macs"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UsageError(f"--dense-metrics {dense_metrics}: not a metrics.json with top1, top5 and macs ({e})"
                         ) from None
    if reference.get("eval_split", "test") != split:
        raise UsageError(f"--dense-metrics {dense_metrics} holds {reference.get('eval_split')} accuracy; this run "
                         f"reports {split} accuracy")
    model.to(device).eval()
    measured = count_macs(model, example_input(bundle.spec, device))
    if measured != macs:
        raise UsageError(f"--dense-metrics {dense_metrics} describes a model of {macs} MACs; the checkpoint has "
                         f"{measured}")
    return {"top1": top1, "top5": top5, "eval_split": split} | size_and_latency(model, bundle, device, opts)


def _ratio(dense: float | None, pruned: float | None) -> float | None:
    """Speed-up dense / pruned, or None when latency was not timed."""
    return None if dense is None or pruned is None else dense / pruned


def image_sizes(bundle: DataBundle) -> dict:
    """The size the model saw and the dataset's own size, for metrics.json."""
    return {"image_size": bundle.spec.image_size, "image_size_native": bundle.native_size}


def _csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def train_run(model_name: str, data: str, epochs: int, seed: int, out: Path, opts: RunOptions,
              settings: TrainSettings, normalize: str | None = None, model_kwargs: dict | None = None,
              image_size: int | None = None) -> dict:
    """Train ``model_name`` on ``data`` (its images resized on load to ``image_size``, if given); writes model.pt,
    metrics.json and train_log.csv."""
    start = time.perf_counter()
    device = configure(opts.threads, seed, opts.device)
    bundle = resize_bundle(load_data(data, opts.download), image_size)
    normalize = normalize or bundle.default_normalization
    norm = normalizer(normalize, bundle.spec.in_channels)
    model = create_model(model_name, bundle.spec, **(model_kwargs or {}))
    check_input_size(model, bundle.spec, model_name)
    check_prunable(model, example_input(bundle.spec), model_name)  # a base model the suite cannot prune is no use
    settings.epochs = epochs
    import_what_optimizers_import()
    t0 = time.perf_counter()
    state = out / "train_state.pt"  # per-epoch state: a killed run resumes; removed once model.pt is written
    out.mkdir(parents=True, exist_ok=True)
    history = train_model(model, bundle.train, norm, settings, seed, device, what=f"train {model_name}",
                          state_path=state)
    seconds = time.perf_counter() - t0
    metrics = evaluate(model, bundle, normalize, device, opts)
    metrics |= {"model": model_name, "data": data, **image_sizes(bundle), "epochs": epochs, "seed": seed,
                "normalize": normalize, "seconds": seconds, "final_loss": history[-1]["loss"] if history else None,
                "settings": vars(resolve_settings(settings, device)), **provenance(device)}
    save_model(out / "model.pt", model, model_name, bundle.spec, normalize, model_kwargs, data)
    if history:
        atomic_write_text(out / "train_log.csv", _csv(history))
    metrics["seconds_total"] = time.perf_counter() - start
    write_json(out / "metrics.json", metrics)
    state.unlink(missing_ok=True)
    return metrics


def load_for_run(checkpoint: str, model_name: str | None, data: str | None, normalize: str | None,
                 opts: RunOptions, image_size: int | None = None) -> tuple[LoadedModel, DataBundle, str]:
    """Load the data and the checkpoint; ``data`` defaults to what an own checkpoint was made on. The images are
    resized on load to ``image_size``, or else to the size an own checkpoint was made at; an ``image_size`` that
    contradicts an own checkpoint's is refused."""
    if data is None:
        loaded = load_model(checkpoint, model_name, None, normalize)
        if loaded.data_arg is None:
            raise UsageError(f"checkpoint {checkpoint} does not record its data: pass --data SPEC")
        data, bundle = loaded.data_arg, load_data(loaded.data_arg, opts.download)
    else:
        bundle = resize_bundle(load_data(data, opts.download), image_size)
        loaded = load_model(checkpoint, model_name, bundle.spec, normalize, resizes=True)
    made_at = loaded.data.image_size
    if image_size is not None and image_size != made_at:
        raise UsageError(f"--image-size {image_size} contradicts checkpoint {checkpoint}, which was made for "
                         f"{made_at}x{made_at} images")
    return loaded, resize_bundle(bundle, made_at), data


def eval_run(checkpoint: str, model_name: str | None, data: str | None, normalize: str | None, out: Path | None,
             opts: RunOptions, image_size: int | None = None) -> dict:
    device = configure(opts.threads, 0, opts.device)
    loaded, bundle, data = load_for_run(checkpoint, model_name, data, normalize, opts, image_size)
    check_input_size(loaded.model.to(device), bundle.spec, loaded.name)
    metrics = evaluate(loaded.model, bundle, loaded.normalize, device, opts)
    metrics |= {"model": loaded.name, "checkpoint": str(checkpoint), "data": data, **image_sizes(bundle),
                "normalize": loaded.normalize, **provenance(device)}
    if out is not None:
        write_json(out, metrics)
    return metrics


def calibration_indices(settings: PruneSettings, bundle: DataBundle) -> list[int]:
    """The training images ``prune_run`` calibrates on for these settings: the given file, else a seeded draw
    (public so that a benchmark can time one step of a job on the same images)."""
    n_train = len(bundle.train)
    if settings.calib_indices:
        return read_indices(settings.calib_indices, n_train)
    return draw_calibration(n_train, settings.samples, settings.seed, settings.validation_size,
                            settings.replacement)


def prune_run(method_name: str, checkpoint: str, model_name: str | None, data: str | None, normalize: str | None,
              settings: PruneSettings, out: Path, opts: RunOptions, method_modules: list[str] | None = None,
              dense_metrics: Path | None = None, image_size: int | None = None) -> dict:
    """Prune a checkpoint with a registered method; writes model.pt, metrics.json, calib_indices.txt and CSVs.
    ``dense_metrics``: the base model's metrics.json, to reuse its accuracy (see :func:`dense_reference`);
    ``image_size``: resize the images on load (see :func:`load_for_run`). One run of :func:`prune_runs`."""
    return prune_runs(method_name, checkpoint, model_name, data, normalize, [(settings, out)], opts, method_modules,
                      dense_metrics, image_size)[0]


def prune_runs(method_name: str, checkpoint: str, model_name: str | None, data: str | None, normalize: str | None,
               runs: list[tuple[PruneSettings, Path]], opts: RunOptions, method_modules: list[str] | None = None,
               dense_metrics: Path | None = None, image_size: int | None = None) -> list[dict]:
    """Several runs of one method on one checkpoint in one process, each ``(settings, out)`` written as it finishes.

    A workflow job prunes a model at several targets, calibration sizes or seeds; loading torch, the data and the
    checkpoint, the support probe and the dense reference are paid once for all of them. Each run starts from a fresh
    copy of the dense model and its own seeds, so its outputs are those of a run alone, apart from timing
    (``seconds_total`` counts the shared loading in the first run). Every ratio is checked before any run starts."""
    start = time.perf_counter()
    load_method_modules(method_modules)
    method = get_method(method_name)
    first = runs[0][0]
    shared = {f.name for f in fields(PruneSettings)} - RUN_SETTINGS
    for settings, out in runs[1:]:
        differing = sorted(k for k in shared if getattr(settings, k) != getattr(first, k))
        if differing:
            raise UsageError(f"run {out}: runs of one job differ only in {', '.join(sorted(RUN_SETTINGS))}, "
                             f"not in {', '.join(differing)}")
    runs = [(resolved_settings(method, settings), out) for settings, out in runs]
    first = runs[0][0]
    device = configure(opts.threads, first.seed, opts.device)
    loaded, bundle, data = load_for_run(checkpoint, model_name, data, normalize, opts, image_size)
    model = loaded.model.to(device).eval()
    check_input_size(model, bundle.spec, loaded.name)
    example = example_input(bundle.spec, device)
    prunable = check_prunable(model, example, loaded.name)
    for settings, _ in runs:  # a ratio that would empty a layer is refused now, not after a method trained
        if settings.ratio is not None:
            select_channels(model, example, settings)
    validation = None
    if opts.eval_split == "validation":
        if first.validation_size < 1:
            raise UsageError("--eval-split validation needs --validation-size N (N >= 1)")
        validation = validation_indices(len(bundle.train), first.validation_size)
    dense = dense_reference(model, bundle, loaded.normalize, device, opts, validation, dense_metrics)
    if method.budget:  # it trains: the optimizer's first step would import into the first run's seconds
        import_what_optimizers_import()
    job = _Job(method_name, method, str(checkpoint), loaded, bundle, data, device, opts, prunable, dense, validation,
               dense_metrics)
    results = []
    for settings, out in runs:
        release_freed_memory()  # the runs before kept theirs (runtime.keep_freed_memory): not this run's peak
        reset_peak_memory()
        metrics = job.run(copy.deepcopy(model), settings, out)
        metrics["peak_rss_mib"] = peak_memory_mib()  # this run's, the shared loading included (still resident)
        metrics["seconds_total"] = time.perf_counter() - start
        write_json(out / "metrics.json", metrics)
        results.append(metrics)
        start = time.perf_counter()
    return results


# What the runs of one prune_runs job may differ in (the budget with the settings it scales).
RUN_SETTINGS = {"target_macs", "ratio", "samples", "seed", "budget"}


def resolved_settings(method: Method, settings: PruneSettings) -> PruneSettings:
    """The settings a run of ``method`` runs with: a variant's fixed settings (``with_settings``), then its budget
    settings scaled by ``settings.budget``; metrics.json records, and hashes, these."""
    settings = replace(settings, **fixed_settings(method.run))
    return replace(settings, **budget_settings(method, settings, settings.budget))


@dataclass
class _Job:
    """What the runs of one :func:`prune_runs` job share."""

    method_name: str
    method: Method
    checkpoint: str
    loaded: LoadedModel
    bundle: DataBundle
    data: str
    device: torch.device
    opts: RunOptions
    prunable: dict[str, int]
    dense: dict
    validation: list[int] | None
    dense_metrics: Path | None

    def run(self, model: nn.Module, settings: PruneSettings, out: Path) -> dict:
        """One run on ``model`` (the dense model, the run's own copy); writes everything but metrics.json, whose
        content it returns."""
        bundle, method, dense = self.bundle, self.method, self.dense
        configure(self.opts.threads, settings.seed, self.opts.device)
        # Calibration methods always draw; labels methods draw only when they ask for the calibration images.
        indices = calibration_indices(settings, bundle) if method.uses == "calibration" else []

        def drawn() -> list[int]:  # filled on first use; what was drawn is recorded below
            if not indices:
                indices.extend(calibration_indices(settings, bundle))
            return indices

        ctx = PruneContext.build(model, bundle, settings, normalize=self.loaded.normalize, indices=drawn,
                                 device=self.device, uses=method.uses, resolved=True)
        torch.manual_seed(settings.seed)
        t0 = time.perf_counter()
        with FlopCount() if self.opts.count_flops else contextlib.nullcontext() as flops:
            result = method.run(ctx)
        seconds = time.perf_counter() - t0
        pruned = evaluate(result.model, bundle, self.loaded.normalize, self.device, self.opts, self.validation)
        settings_dict = settings.to_dict() | {"method": self.method_name, "model": self.loaded.name,
                                              "data": self.data, "normalize": self.loaded.normalize,
                                              "checkpoint": self.checkpoint}
        if bundle.resized_from is not None:  # only then: runs at the data's own size keep the hash they always had
            settings_dict["image_size"] = bundle.spec.image_size
        metrics = {
            "method": self.method_name, "model": self.loaded.name, "data": self.data, **image_sizes(bundle),
            "uses": method.uses,
            "top1": pruned["top1"], "top5": pruned["top5"], "eval_split": pruned["eval_split"],
            "top1_dense": dense["top1"], "top5_dense": dense["top5"],
            "macs": pruned["macs"], "macs_dense": dense["macs"], "params": pruned["params"],
            "params_dense": dense["params"], "rf": 1 - pruned["macs"] / dense["macs"],
            "rp": 1 - pruned["params"] / dense["params"], "macs_reduction": dense["macs"] / pruned["macs"],
            "latency_b1": pruned["latency_b1"], "latency_b64": pruned["latency_b64"],
            "latency_b1_dense": dense["latency_b1"], "latency_b64_dense": dense["latency_b64"],
            "speedup_b1": _ratio(dense["latency_b1"], pruned["latency_b1"]),
            "speedup_b64": _ratio(dense["latency_b64"], pruned["latency_b64"]),
            "torch_format_b1": pruned["torch_format_b1"], "torch_format_b64": pruned["torch_format_b64"],
            "latency_b1_ort": pruned["latency_b1_ort"], "latency_b64_ort": pruned["latency_b64_ort"],
            "latency_b1_ort_dense": dense["latency_b1_ort"], "latency_b64_ort_dense": dense["latency_b64_ort"],
            "speedup_b1_ort": _ratio(dense["latency_b1_ort"], pruned["latency_b1_ort"]),
            "speedup_b64_ort": _ratio(dense["latency_b64_ort"], pruned["latency_b64_ort"]),
            "onnx_difference": pruned["onnx_difference"],
            "seconds": seconds, "images_seen": result.images_seen, "epochs": result.epochs,
            "method_flops": flops.total if flops else None,
            "method_flops_by_pass": dict(flops.by_pass) if flops else None,
            "samples": len(indices), "seed": settings.seed, "importance": settings.importance,
            "selection": settings.selection, "target_macs": settings.target_macs, "ratio": settings.ratio,
            "calib_indices_file": str(out / "calib_indices.txt") if indices else None,
            "dense_metrics_file": str(self.dense_metrics) if self.dense_metrics else None,
            "channels_removed": {k: len(v) for k, v in result.selection.items()},
            "channels_removed_fraction": sum(map(len, result.selection.values())) / sum(self.prunable.values()),
            "settings": settings_dict, "settings_hash": settings_hash(settings_dict), **provenance(self.device),
            **result.extra,
        }
        out.mkdir(parents=True, exist_ok=True)
        if indices:
            atomic_write_text(out / "calib_indices.txt", format_indices(indices))
        for name, rows in result.tables.items():
            if rows:
                atomic_write_text(out / f"{name}.csv", _csv(rows))
        write_json(out / "selection.json", result.selection)
        save_model(out / "model.pt", result.model.cpu(), self.loaded.name, bundle.spec, self.loaded.normalize,
                   self.loaded.model_kwargs, self.data)
        return metrics


def export_run(checkpoint: str, model_name: str | None, data: str | None, normalize: str | None, onnx_path: Path,
               opts: RunOptions) -> dict:
    """Export a checkpoint to ONNX, check ONNX Runtime's outputs against PyTorch's, then write the file (a failed
    check writes nothing). The file's metadata names the model, its data spec and the input normalisation."""
    start = time.perf_counter()
    configure(opts.threads, 0, "cpu")
    if data is None:
        loaded = load_model(checkpoint, model_name, None, normalize)
    else:
        loaded = load_for_run(checkpoint, model_name, data, normalize, opts)[0]
    spec = loaded.data
    example = example_input(spec)
    onnx_bytes = export_onnx(loaded.model, example)
    difference = check_export(loaded.model, onnx_bytes, example, torch.get_num_threads())
    onnx_bytes = with_metadata(onnx_bytes, {
        "psp_bench.model": loaded.name, "psp_bench.data": json.dumps(spec.to_dict()),
        "psp_bench.normalize": loaded.normalize, "psp_bench.checkpoint": str(checkpoint)})
    atomic_write_bytes(onnx_path, onnx_bytes)
    return {"onnx": str(onnx_path), "bytes": len(onnx_bytes), "onnx_difference": difference, "tolerance": TOLERANCE,
            "seconds": time.perf_counter() - start}
