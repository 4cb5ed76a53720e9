"""Every setting of ``psp prune``, common and method-specific, in one flat namespace.

Each field becomes a command-line flag (``reg_growth`` → ``--reg-growth``) and is recorded in ``metrics.json`` for
every method, used or not, so that any two runs can be compared setting by setting. Defaults reproduce the
released PSP code (see ``../shared/docs/method.md``); retraining budgets default to a CPU-sized run.

Settings validate themselves when made: the library and the command line refuse the same values with the same
one-line message. No torch here, so the command line checks its arguments before importing it.
"""

from dataclasses import asdict, dataclass, field, fields

from psp.errors import UsageError, choice_error
from psp.options import (
    BN_MODES,
    CONV_INPUT_GRADS,
    DISTILL_LOSSES,
    IMPORTANCES,
    LR_SCHEDULES,
    MEMORY_FORMATS,
    PENALTIES,
    SELECTIONS,
)


def _opt(default: object, help: str, choices: tuple | None = None, at_least: float | None = None,
         above: float | None = None, below: float | None = None) -> object:
    """A setting: its default, help, and what it accepts (``choices``, or a range: ``>= at_least``, ``> above``,
    ``< below``; None is accepted wherever it is the default)."""
    return field(default=default, metadata={"help": help, "choices": choices, "at_least": at_least, "above": above,
                                            "below": below})


def _refusal(name: str, value: object, meta: dict) -> str | None:
    """Why ``value`` is not accepted for setting ``name`` (None if it is)."""
    flag = "--" + name.replace("_", "-")
    if meta["choices"] is not None:
        return None if value in meta["choices"] else str(choice_error(name.replace("_", " "), value, meta["choices"]))
    if meta["above"] is not None and meta["below"] is not None and not meta["above"] < value < meta["below"]:
        return f"{flag} {value} is outside ({meta['above']:g}, {meta['below']:g})"
    if meta["above"] is not None and not value > meta["above"]:
        return f"{flag} {value} must be > {meta['above']:g}"
    if meta["at_least"] is not None and not value >= meta["at_least"]:
        return f"{flag} {value} must be >= {meta['at_least']:g}"
    return None


@dataclass
class PruneSettings:
    # Selection (shared by every method unless a method defines its own)
    importance: str = _opt("l2", "channel importance", IMPORTANCES)
    selection: str = _opt("global", "one ranking over all groups, or the same ratio per group", SELECTIONS)
    ratio: float | None = _opt(None, "fraction of channels to remove, 0 < R < 1", above=0, below=1)
    target_macs: float | None = _opt(None, "keep 1/X of the dense MACs, X > 1 (within ±2 %%)", above=1)
    min_channels: int = _opt(1, "never keep fewer channels than this in any group", at_least=1)
    round_to: int = _opt(1, "round kept channel counts to a multiple of this", at_least=1)
    # Calibration data
    samples: int = _opt(512, "number of calibration images (drawn without replacement)", at_least=1)
    seed: int = _opt(0, "seed of the calibration draw and of every random choice")
    calib_indices: str | None = _opt(None, "file of training-split indices, one per line (overrides the draw)")
    replacement: bool = _opt(False, "draw calibration images with replacement, as the released code does")
    validation_size: int = _opt(0, "training images held out as a validation split (never drawn for calibration)",
                                at_least=0)
    # Compute budget
    budget: float = _opt(1.0, "multiply the method's budget settings (its epochs, see `psp list`) by this: a rung of "
                              "a budget ladder", above=0)
    # PSP (released defaults)
    batch_size: int = _opt(128, "calibration batch size", at_least=1)
    lr: float = _opt(1e-3, "Adam learning rate of both PSP phases and of AdaPrune/gAP", above=0)
    penalty_epochs: int = _opt(20, "PSP phase 1 (sparsity penalty) epochs", at_least=0)
    rec_epochs: int = _opt(10, "PSP phase 2 (reconstruction) epochs", at_least=0)
    reg: float = _opt(0.02, "PSP penalty strength at epoch 0")
    reg_growth: float = _opt(0.02, "PSP penalty increase per epoch (lambda_j = reg + j * reg_growth)")
    penalty: str = _opt("replace", "how the penalty meets the reconstruction gradient of the selected weights",
                        PENALTIES)
    balanced: bool = _opt(True, "balanced per-layer learning rates lr / (L - i)^power in phase 2")
    balance_power: float = _opt(1.0, "exponent of the balanced rates (1: released; 0: one rate; between: milder)")
    lr_schedule: str = _opt("constant", "learning rate over the steps of both PSP phases, or of phase 2 only",
                            LR_SCHEDULES)
    bn_mode: str = _opt("train", "BatchNorm mode of the model being reconstructed", BN_MODES)
    reselect: bool = _opt(True, "rank again on the phase-1 weights before removal")
    bn_recalibrate: bool = _opt(False, "re-estimate BatchNorm statistics on the calibration images after phase 2")
    cache_targets: bool = _opt(True, "compute the original model's layer outputs once (within --cache-mib)")
    cache_mib: int = _opt(4096, "memory budget for cached layer outputs, MiB")
    memory_format: str = _opt("auto", "tensor layout of PSP's phases: channels_last (NHWC), contiguous (NCHW), or "
                                      "auto (channels_last on CPU when every convolution's width is a multiple of 16, "
                                      "where it was measured faster; else contiguous, and on CUDA); auto is "
                                      "resolved again for the pruned model of phase 2", MEMORY_FORMATS)
    conv_input_grad: str = _opt("auto", "how PSP's phases compute a stride-1 same convolution's input gradient: "
                                        "native (the backend's backward kernel), forward (a forward convolution with "
                                        "the flipped kernel, the same sums in another order), or auto (forward on "
                                        "CPU in NCHW, where it was measured faster; else native)", CONV_INPUT_GRADS)
    # Recovery controls (oneshot_kd, oneshot_ft): PSP's optimiser, batch size, BN mode and penalty + rec epochs
    distill_loss: str = _opt("mse", "oneshot_kd's loss on the logits: PSP's normalised squared error, or KL at T=1",
                             DISTILL_LOSSES)
    # Layer-wise baselines (AdaPrune, gAP)
    layer_epochs: int = _opt(10, "AdaPrune/gAP epochs per layer", at_least=0)
    # Retraining baselines (L1, GReg, DepGraph)
    epochs: int = _opt(1, "fine-tuning epochs of retraining baselines (the papers used 100+)", at_least=0)
    train_subset: int | None = _opt(10000, "fine-tune on this many training images per epoch (0: all)")
    finetune_lr: float = _opt(0.01, "SGD learning rate of fine-tuning", above=0)
    amp: bool = _opt(False, "bfloat16 mixed precision for fine-tuning on CUDA (ignored on CPU)")
    reg_epochs: int = _opt(1, "regularisation epochs of GReg/DepGraph before removal", at_least=0)
    greg_ceiling: float = _opt(1.0, "GReg: the penalty grows linearly to this value over --reg-epochs")
    group_lasso: float = _opt(5e-4, "DepGraph: group-norm regularisation strength")

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            reason = None if value is None and f.default is None else _refusal(f.name, value, f.metadata)
            if reason:
                raise UsageError(reason)

    def to_dict(self) -> dict:
        return asdict(self)

