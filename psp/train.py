"""Supervised training with labels: base models, and the fine-tuning of retraining baselines.

SGD with Nesterov momentum 0.9, weight decay 5e-4, a cosine learning-rate schedule per step, seeded shuffling and
augmentation (random crop and, for colour images, horizontal flip). A hook between the backward pass and the step
lets regularised baselines (GReg, DepGraph) shape the gradients. With a ``state_path`` the training state is saved
after every epoch and a rerun resumes from it: a base model of 200 epochs survives a killed or pre-empted job. On
CUDA the model trains in channels-last layout (and with bfloat16 autocast when ``amp`` is set), and no step waits for
the device: the loss is read once per epoch.
"""

import io
import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from psp.data.loaders import batches
from psp.progress import progress
from psp.runtime import atomic_write_bytes

log = logging.getLogger(__name__)

GradientHook = Callable[[nn.Module, int, int], None]  # (model, epoch, step) after backward, before the step


@dataclass
class TrainSettings:
    epochs: int = 10
    lr: float = 0.1
    batch_size: int = 128
    momentum: float = 0.9
    weight_decay: float = 5e-4
    subset: int | None = None  # train on the first N images of a seeded permutation of the split
    amp: bool = False  # bfloat16 autocast on CUDA (ignored on CPU)
    channels_last: bool | None = None  # model and batches in channels-last memory format; None: on CUDA only


def resolve_settings(settings: TrainSettings, device: torch.device) -> TrainSettings:
    """The settings as they run on ``device`` (what metrics.json records): autocast only on CUDA, channels-last
    decided."""
    cuda = torch.device(device).type == "cuda"
    channels_last = cuda if settings.channels_last is None else settings.channels_last
    return replace(settings, amp=settings.amp and cuda, channels_last=channels_last)


class NonFiniteLoss(RuntimeError):
    """A loss became NaN or Inf; the message names what was running and when."""


def _save_state(path: Path, key: dict, epoch: int, model: nn.Module, optimizer: torch.optim.Optimizer,
                schedule: torch.optim.lr_scheduler.LRScheduler, history: list[dict]) -> None:
    buffer = io.BytesIO()
    torch.save({"key": key, "epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(), "history": history}, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _resume(path: Path, key: dict, model: nn.Module, optimizer: torch.optim.Optimizer,
            schedule: torch.optim.lr_scheduler.LRScheduler) -> tuple[int, list[dict]]:
    """Load the state a killed run left (epochs done, history); a state made with other settings is ignored."""
    if not path.is_file():
        return 0, []
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state["key"] != key:
        log.warning("ignoring %s: saved for %s, this run is %s", path, state["key"], key)
        return 0, []
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["schedule"])
    log.info("resuming from %s after epoch %d", path, state["epoch"])
    return state["epoch"], state["history"]


def train_model(model: nn.Module, dataset: Dataset, normalize: tuple[torch.Tensor, torch.Tensor],
                settings: TrainSettings, seed: int, device: torch.device, what: str = "train",
                gradient_hook: GradientHook | None = None, state_path: Path | None = None) -> list[dict]:
    """Train in place; returns one ``{"epoch", "loss"}`` row per epoch. ``state_path``: save the state there after
    every epoch and resume from it if a previous run with the same settings and seed left one."""
    device = torch.device(device)
    settings = resolve_settings(settings, device)
    model.to(device).train()
    if settings.channels_last:
        model.to(memory_format=torch.channels_last)
    indices = None
    n = min(settings.subset, len(dataset)) if settings.subset else len(dataset)
    if n < len(dataset):
        perm = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))
        indices = perm[:n].tolist()
    steps_per_epoch = math.ceil(n / settings.batch_size)
    total = max(1, settings.epochs * steps_per_epoch)
    optimizer = torch.optim.SGD(model.parameters(), lr=settings.lr, momentum=settings.momentum,
                                weight_decay=settings.weight_decay, nesterov=True)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
    criterion = nn.CrossEntropyLoss()
    key = asdict(settings) | {"seed": seed}
    start, history = _resume(state_path, key, model, optimizer, schedule) if state_path else (0, [])
    for epoch in range(start, settings.epochs):
        # The loss sum stays on the device (float64, as the Python float it replaces): read once per epoch, so the
        # host never waits for a step.
        running, seen = torch.zeros((), dtype=torch.float64, device=device), 0
        stream = batches(dataset, settings.batch_size, normalize, device, shuffle=True, seed=seed * 1000 + epoch,
                         augment=True, indices=indices)
        for step, (x, y) in enumerate(progress(stream, total=steps_per_epoch, desc=f"{what} epoch {epoch + 1}")):
            if settings.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=settings.amp):
                loss = criterion(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if gradient_hook is not None:
                gradient_hook(model, epoch, step)
            optimizer.step()
            schedule.step()
            running += loss.detach().double() * len(y)
            seen += len(y)
        mean = running.item() / max(seen, 1)
        if not math.isfinite(mean):
            raise NonFiniteLoss(f"{what}: loss became {mean} in epoch {epoch + 1}")
        history.append({"epoch": epoch + 1, "loss": mean})
        log.info("%s epoch %d/%d: loss %.4f", what, epoch + 1, settings.epochs, mean)
        if state_path:
            _save_state(state_path, key, epoch + 1, model, optimizer, schedule, history)
    if settings.channels_last:  # hand the model back in the layout everything downstream expects
        model.to(memory_format=torch.contiguous_format)
    return history
