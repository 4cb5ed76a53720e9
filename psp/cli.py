"""The ``psp`` command: ``train``, ``eval``, ``prune``, ``export``, ``list``.

Bad input ends the command with one line naming the value and what is accepted, and exit code 2 (a traceback only
with ``--debug``). Cheap checks (numbers, names, files) run before torch is imported.
"""

import argparse
import logging
import os
import sys
import types
from dataclasses import fields
from pathlib import Path

from psp.errors import UsageError
from psp.options import DEVICES

EXIT_USAGE = 2
EXIT_FAILURE = 1


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        raise UsageError(message)


def _int_at_least(minimum: int):
    """An argparse type: an integer >= ``minimum``, or a one-line error naming the value."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} must be >= {minimum}")
        return value
    return parse


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)
MIN_IMAGE_SIZE = 8


def _image_size(p: argparse.ArgumentParser) -> None:
    p.add_argument("--image-size", type=_int_at_least(MIN_IMAGE_SIZE), metavar="N",
                   help="resize the images to NxN on load, for models that cannot run on the data's own size "
                        "(default: the data's size, or the size an own checkpoint was made at)")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=_positive_int, help="torch CPU threads")
    p.add_argument("--latency-repeats", type=_non_negative_int, default=20,
                   help="timed forward passes per latency figure; 0 skips timing (latency keys are null), e.g. when "
                        "a separate job times every model alone, as the workflow does")
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--download", action="store_true", help="allow downloading CIFAR through torchvision")
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def _add_settings(p: argparse.ArgumentParser) -> None:
    from psp.settings import PruneSettings

    for f in fields(PruneSettings):
        flag = "--" + f.name.replace("_", "-")
        kind = f.type
        if isinstance(kind, types.UnionType):
            kind = next(t for t in kind.__args__ if t is not type(None))
        meta = f.metadata
        # Accepted values are checked by PruneSettings itself, so the library and this command say the same thing.
        shown = f"{meta['help']} ({', '.join(meta['choices'])})" if meta["choices"] else meta["help"]
        if kind is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=shown)
        else:
            p.add_argument(flag, type=kind, default=f.default, help=shown)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="psp", description="Post-training structured pruning benchmark suite")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = sub.add_parser("train", help="train a base model with labels")
    train.add_argument("--model", required=True)
    train.add_argument("--data", required=True)
    train.add_argument("--epochs", type=int, required=True)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--lr", type=float, default=0.1)
    train.add_argument("--batch-size", type=_positive_int, default=128)
    train.add_argument("--normalize")
    train.add_argument("--out", required=True, type=Path)
    train.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True,
                       help="bfloat16 autocast on CUDA (default: on; ignored on CPU)")
    train.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                       help="model and batches in channels-last memory format (default: on CUDA only)")
    _image_size(train)
    _common(train)

    ev = sub.add_parser("eval", help="evaluate a checkpoint: top1, top5, macs, params, latency")
    ev.add_argument("--checkpoint", required=True)
    ev.add_argument("--model")
    ev.add_argument("--data")
    ev.add_argument("--normalize")
    ev.add_argument("--out", type=Path, help="write the metrics to this JSON file")
    _image_size(ev)
    _common(ev)

    prune = sub.add_parser("prune", help="prune a checkpoint with a registered method")
    prune.add_argument("--method", required=True)
    prune.add_argument("--model")
    prune.add_argument("--checkpoint", required=True)
    prune.add_argument("--data")
    prune.add_argument("--normalize")
    prune.add_argument("--out", type=Path, help="the run's folder (or give --run, once per run)")
    prune.add_argument("--run", action="append", type=_run_spec, metavar="target=T,samples=N,seed=S,out=DIR[,budget=X]",
                       help="one of several runs in this process, differing only in target (a MACs reduction such "
                            "as 2.0, or r0.5 for a global ratio), calibration size and seed; repeat it. The "
                            "checkpoint, data and checks are loaded once; each run's outputs are those of a run alone")
    prune.add_argument("--no-flop-count", dest="count_flops", action="store_false",
                       help="do not count the FLOPs the method executes (method_flops is null); for measuring the "
                            "counter's own cost")
    prune.add_argument("--eval-split", choices=("test", "validation"), default="test",
                       help="report accuracy on the test split, or on the --validation-size carve (for tuning)")
    prune.add_argument("--dense-metrics", type=Path,
                       help="the unpruned model's metrics.json (from psp eval/train): reuse its accuracy instead of "
                            "evaluating it again")
    prune.add_argument("--method-module", action="append", default=[], help="import a module that registers methods")
    scope = prune.add_mutually_exclusive_group()
    scope.add_argument("--global", dest="selection_flag", action="store_const", const="global")
    scope.add_argument("--uniform", dest="selection_flag", action="store_const", const="uniform")
    _add_settings(prune)
    _image_size(prune)
    _common(prune)

    export = sub.add_parser("export", help="export a checkpoint (dense or pruned) to ONNX, checked in ONNX Runtime")
    export.add_argument("--checkpoint", required=True)
    export.add_argument("--onnx", required=True, type=Path, help="the ONNX file to write")
    export.add_argument("--model", help="architecture of a foreign checkpoint (with --data)")
    export.add_argument("--data", help="data spec of a foreign checkpoint (its image size and classes)")
    export.add_argument("--normalize", help="recorded in the file's metadata: the input normalisation it expects")
    export.add_argument("--threads", type=_positive_int, help="CPU threads for the check")
    export.add_argument("--debug", action="store_true", help="show tracebacks")

    sub.add_parser("list", help="list registered models and methods")
    return parser


def _check_out_dir(path: Path) -> None:
    target = path if path.suffix == "" else path.parent
    probe = target
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK):
        raise UsageError(f"output folder {target} is not writable")


RUN_KEYS = ("target", "samples", "seed", "out")  # and budget=X, optional (default 1: the method's own epochs)


def _run_spec(text: str) -> dict:
    """``target=2.0,samples=256,seed=0,out=DIR[,budget=X]`` (every key once): the settings of one run and its
    folder."""
    from psp.pruning_target import PruningTarget

    try:
        pairs = dict(item.split("=", 1) for item in text.split(","))
    except ValueError:
        pairs = {}
    if sorted(set(pairs) - {"budget"}) != sorted(RUN_KEYS):
        raise argparse.ArgumentTypeError(f"{text!r} is not target=T,samples=N,seed=S,out=DIR[,budget=X]")
    try:
        target = PruningTarget.parse(pairs["target"])
        samples, seed, budget = int(pairs["samples"]), int(pairs["seed"]), float(pairs.get("budget", 1))
    except (UsageError, ValueError) as e:
        raise argparse.ArgumentTypeError(f"{text!r}: {e}") from None
    kind = {"target_macs": target.value, "ratio": None} if target.kind == "macs" else {
        "target_macs": None, "ratio": target.value}
    return {"settings": kind | {"samples": samples, "seed": seed, "budget": budget}, "out": Path(pairs["out"])}


def _validate(args: argparse.Namespace) -> None:
    """Checks that need no torch: numbers, names, files."""
    from psp.data.datasets import check_data_arg
    from psp.data.normalization import check_normalization

    if getattr(args, "data", None):
        check_data_arg(args.data)
    if getattr(args, "normalize", None):
        check_normalization(args.normalize)
    if getattr(args, "checkpoint", None) and not Path(args.checkpoint).is_file():
        raise UsageError(f"checkpoint {args.checkpoint} does not exist")
    if getattr(args, "out", None) is not None:
        _check_out_dir(args.out)
    if args.command == "export":
        if args.onnx.is_dir():
            raise UsageError(f"--onnx {args.onnx} is a directory; give a file name such as {args.onnx / 'model.onnx'}")
        _check_out_dir(args.onnx)
    if args.command == "train" and args.epochs < 0:
        raise UsageError(f"--epochs {args.epochs} must be >= 0")
    if args.command == "prune":
        _validate_prune(args)


def _validate_prune(args: argparse.Namespace) -> None:
    from psp.settings import PruneSettings

    if args.selection_flag:
        args.selection = args.selection_flag
    given = {f.name: getattr(args, f.name) for f in fields(PruneSettings)}
    if args.run:
        clashing = [flag for flag, value in (("--out", args.out), ("--ratio", args.ratio),
                                             ("--target-macs", args.target_macs)) if value is not None]
        if clashing:
            raise UsageError(f"{', '.join(clashing)} cannot be given with --run (each run names its target and out)")
        args.runs = [(PruneSettings(**given | run["settings"]), run["out"]) for run in args.run]
        for _, out in args.runs:
            _check_out_dir(out)
    else:
        if args.out is None:
            raise UsageError("give --out DIR (one run) or --run target=T,samples=N,seed=S,out=DIR (several)")
        if (args.ratio is None) == (args.target_macs is None):
            raise UsageError("give exactly one of --ratio R (0 < R < 1) or --target-macs X (X > 1)")
        args.runs = [(PruneSettings(**given), args.out)]
    if args.dense_metrics and not args.dense_metrics.is_file():
        raise UsageError(f"--dense-metrics {args.dense_metrics} does not exist")
    if args.calib_indices and not Path(args.calib_indices).is_file():
        raise UsageError(f"calibration indices file {args.calib_indices} does not exist")


def _run(args: argparse.Namespace) -> None:
    from psp import pipeline

    if args.command == "list":
        from psp.models import list_models
        from psp.registry import catalogue

        print("models:", " ".join(list_models()), "tv:<torchvision name> timm:<timm name>")
        for name, m in catalogue().items():  # in table order
            budget = f"budget={'+'.join(m['budget']) or '-':26s}"
            print(f"method {name:18s} {m['family']:14s} uses={m['uses']:12s} {budget} {m['summary']}")
        return
    if args.command == "export":
        if args.model:
            from psp.models._registry import check_model_name

            check_model_name(args.model)
        result = pipeline.export_run(args.checkpoint, args.model, args.data, args.normalize, args.onnx,
                                     pipeline.RunOptions(threads=args.threads))
        print(f"wrote {result['onnx']} ({result['bytes']} bytes): ONNX Runtime vs PyTorch max |difference| "
              f"{result['onnx_difference']:.2e} relative (tolerance {result['tolerance']:g})")
        return
    opts = pipeline.RunOptions(threads=args.threads, device=args.device, download=args.download,
                               latency_repeats=args.latency_repeats, eval_split=getattr(args, "eval_split", "test"),
                               count_flops=getattr(args, "count_flops", True))
    if args.command == "train":
        from psp.models._registry import check_model_name
        from psp.train import TrainSettings

        check_model_name(args.model)
        metrics = pipeline.train_run(args.model, args.data, args.epochs, args.seed, args.out, opts,
                                     TrainSettings(lr=args.lr, batch_size=args.batch_size, amp=args.amp,
                                                   channels_last=args.channels_last), args.normalize,
                                     image_size=args.image_size)
    elif args.command == "eval":
        if args.model:
            from psp.models._registry import check_model_name

            check_model_name(args.model)
        metrics = pipeline.eval_run(args.checkpoint, args.model, args.data, args.normalize, args.out, opts,
                                    args.image_size)
    else:
        from psp.methods import get_method, load_method_modules

        load_method_modules(args.method_module)
        get_method(args.method)
        if args.model:
            from psp.models._registry import check_model_name

            check_model_name(args.model)
        runs = pipeline.prune_runs(args.method, args.checkpoint, args.model, args.data, args.normalize, args.runs,
                                   opts, args.method_module, args.dense_metrics, args.image_size)
        for (_, out), metrics in zip(args.runs[:-1], runs, strict=False):  # the last run is printed below
            print(f"{out}: top1={metrics['top1']:.4g} macs_reduction={metrics['macs_reduction']:.4g} "
                  f"seconds={metrics['seconds']:.4g}")
        metrics = runs[-1]
    keys = ("top1", "top5", "macs", "params", "macs_reduction", "latency_b1", "latency_b64", "seconds")
    print(" ".join(f"{k}={metrics[k]:.4g}" for k in keys if isinstance(metrics.get(k), (int, float))))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args(argv)
        _validate(args)
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
        _run(args)
    except UsageError as e:
        if debug:
            raise
        print(f"psp: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("psp: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a failure of the run itself: one line unless --debug
        if debug:
            raise
        print(f"psp: failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}", file=sys.stderr)
        return EXIT_FAILURE
    return 0


if __name__ == "__main__":
    sys.exit(main())
