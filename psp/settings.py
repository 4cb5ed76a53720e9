"""Every setting of ``psp prune``, common and method-specific, in one flat namespace.

Each field becomes a command-line flag (``reg_growth`` → ``--reg-growth``) and is recorded in ``metrics.json`` for
every method, used or not, so that any two runs can be compared setting by setting. Defaults reproduce the
released PSP code (see ``../shared/docs/method.md``); retraining budgets default to a CPU-sized run.
"""

from dataclasses import asdict, dataclass, field


def _opt(default: object, help: str, choices: tuple | None = None) -> object:
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass
class PruneSettings:
    # Selection (shared by every method unless a method defines its own)
    importance: str = _opt("l2", "channel importance", ("l2", "l1", "l2_sum", "random"))
    selection: str = _opt("global", "one ranking over all groups, or the same ratio per group", ("global", "uniform"))
    ratio: float | None = _opt(None, "fraction of channels to remove, 0 < R < 1")
    target_macs: float | None = _opt(None, "keep 1/X of the dense MACs, X > 1 (within ±2 %%)")
    min_channels: int = _opt(1, "never keep fewer channels than this in any group")
    round_to: int = _opt(1, "round kept channel counts to a multiple of this")
    # Calibration data
    samples: int = _opt(512, "number of calibration images (drawn without replacement)")
    seed: int = _opt(0, "seed of the calibration draw and of every random choice")
    calib_indices: str | None = _opt(None, "file of training-split indices, one per line (overrides the draw)")
    replacement: bool = _opt(False, "draw calibration images with replacement, as the released code does")
    validation_size: int = _opt(0, "training images held out as a validation split (never drawn for calibration)")
    # PSP (released defaults)
    batch_size: int = _opt(128, "calibration batch size")
    lr: float = _opt(1e-3, "Adam learning rate of both PSP phases and of AdaPrune/gAP")
    penalty_epochs: int = _opt(20, "PSP phase 1 (sparsity penalty) epochs")
    rec_epochs: int = _opt(10, "PSP phase 2 (reconstruction) epochs")
    reg: float = _opt(0.02, "PSP penalty strength at epoch 0")
    reg_growth: float = _opt(0.02, "PSP penalty increase per epoch (lambda_j = reg + j * reg_growth)")
    penalty: str = _opt("replace", "how the penalty meets the reconstruction gradient of the selected weights",
                        ("replace", "add", "decay"))
    balanced: bool = _opt(True, "balanced per-layer learning rates lr / (L - i)^power in phase 2")
    balance_power: float = _opt(1.0, "exponent of the balanced rates (1: released; 0: one rate; between: milder)")
    lr_schedule: str = _opt("constant", "learning rate over the steps of both PSP phases, or of phase 2 only",
                            ("constant", "cosine", "phase2_cosine"))
    bn_mode: str = _opt("train", "BatchNorm mode of the model being reconstructed", ("train", "eval"))
    reselect: bool = _opt(True, "rank again on the phase-1 weights before removal")
    bn_recalibrate: bool = _opt(False, "re-estimate BatchNorm statistics on the calibration images after phase 2")
    cache_targets: bool = _opt(True, "compute the original model's layer outputs once (within --cache-mib)")
    cache_mib: int = _opt(4096, "memory budget for cached layer outputs, MiB")
    # Recovery controls (oneshot_kd, oneshot_ft): PSP's optimiser, batch size, BN mode and penalty + rec epochs
    distill_loss: str = _opt("mse", "oneshot_kd's loss on the logits: PSP's normalised squared error, or KL at T=1",
                             ("mse", "kl"))
    # Layer-wise baselines (AdaPrune, gAP)
    layer_epochs: int = _opt(10, "AdaPrune/gAP epochs per layer")
    # Retraining baselines (L1, GReg, DepGraph)
    epochs: int = _opt(1, "fine-tuning epochs of retraining baselines (the papers used 100+)")
    train_subset: int | None = _opt(10000, "fine-tune on this many training images per epoch (0: all)")
    finetune_lr: float = _opt(0.01, "SGD learning rate of fine-tuning")
    amp: bool = _opt(False, "bfloat16 mixed precision for fine-tuning on CUDA (ignored on CPU)")
    reg_epochs: int = _opt(1, "regularisation epochs of GReg/DepGraph before removal")
    greg_ceiling: float = _opt(1.0, "GReg: the penalty grows linearly to this value over --reg-epochs")
    group_lasso: float = _opt(5e-4, "DepGraph: group-norm regularisation strength")

    def to_dict(self) -> dict:
        return asdict(self)

