"""Reading and writing model checkpoints, never unpickling code (``torch.load(..., weights_only=True)``).

Two formats are read:

* the suite's own ``model.pt``: ``{"format": FORMAT, "model": registry name, "model_kwargs", "data": data spec,
  "normalize": name, "channels": per-layer widths, "state_dict"}``, enough to rebuild a pruned model alone;
* a foreign checkpoint (a plain state dict, or one wrapped as ``{"state_dict": ...}`` / ``{"model": ...}``, keys
  possibly prefixed ``module.`` by DataParallel) for an architecture named with ``--model``.
"""

import io
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from psp.data.spec import DataSpec
from psp.errors import UsageError
from psp.models import create_model
from psp.models._registry import default_normalization
from psp.runtime import atomic_write_bytes
from psp.structure.spec import apply_channel_spec, channel_spec

FORMAT = "psp-bench/model/1"


@dataclass
class LoadedModel:
    model: nn.Module
    name: str
    data: DataSpec | None
    normalize: str
    model_kwargs: dict = field(default_factory=dict)
    data_arg: str | None = None  # the --data the model was trained or pruned on, if recorded


def save_model(path: str | Path, model: nn.Module, name: str, data: DataSpec, normalize: str,
               model_kwargs: dict | None = None, data_arg: str | None = None) -> None:
    payload = {"format": FORMAT, "model": name, "model_kwargs": dict(model_kwargs or {}), "data": data.to_dict(),
               "data_arg": data_arg, "normalize": normalize, "channels": channel_spec(model),
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def read_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"checkpoint {path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # the unpickler raises anything (KeyError, IndexError, ...) on foreign bytes
        reason = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise UsageError(f"checkpoint {path} is truncated or not a PyTorch checkpoint ({reason})") from None
    if not isinstance(obj, dict):
        raise UsageError(f"checkpoint {path} holds a {type(obj).__name__}, not a state dict")
    return obj


def _foreign_state_dict(obj: dict, path: Path) -> dict[str, torch.Tensor]:
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    state = {k.removeprefix("module."): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise UsageError(f"checkpoint {path} holds no tensors")
    return state


def _load_state(model: nn.Module, state: dict[str, torch.Tensor], path: Path, name: str) -> None:
    expected = model.state_dict()
    # Checkpoints from old PyTorch versions have no BatchNorm step counters; the fresh model's are kept.
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    shape = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or shape:
        def brief(keys: list[str]) -> str:
            return ", ".join(keys[:3]) + (f" (+{len(keys) - 3} more)" if len(keys) > 3 else "")

        parts = [f"missing keys {brief(missing)}" if missing else "",
                 f"unexpected keys {brief(unexpected)}" if unexpected else "",
                 f"shape mismatch at {brief(shape)}" if shape else ""]
        raise UsageError(f"checkpoint {path} does not fit model {name!r}: " + "; ".join(p for p in parts if p))
    model.load_state_dict(state, strict=False)


def load_model(path: str | Path, name: str | None = None, data: DataSpec | None = None,
               normalize: str | None = None, resizes: bool = False) -> LoadedModel:
    """Rebuild a model from a checkpoint. Own checkpoints need nothing else; foreign ones need ``name`` and
    ``data`` (the normalisation defaults to what the architecture's public checkpoints were trained with).
    ``resizes``: the caller resizes the images to the size an own checkpoint was made at, so ``data`` need only
    match its channels and classes."""
    path = Path(path)
    obj = read_checkpoint(path)
    if obj.get("format") == FORMAT:
        stored = DataSpec.from_dict(obj["data"])
        if name is not None and name != obj["model"]:
            raise UsageError(f"checkpoint {path} is a {obj['model']!r} model, not {name!r}")
        if data is not None:
            size = stored.image_size if resizes else data.image_size
            if (data.in_channels, size, data.num_classes) != (
                    stored.in_channels, stored.image_size, stored.num_classes):
                raise UsageError(f"checkpoint {path} was made for {stored}, not for data {data}")
        model = create_model(obj["model"], stored, **obj["model_kwargs"])
        try:
            apply_channel_spec(model, obj["channels"], {k: v.shape for k, v in obj["state_dict"].items()})
        except (AttributeError, KeyError, TypeError) as e:
            raise UsageError(f"checkpoint {path}: its channel spec does not fit {obj['model']!r} ({e})") from None
        _load_state(model, obj["state_dict"], path, obj["model"])
        return LoadedModel(model, obj["model"], stored, normalize or obj["normalize"], obj["model_kwargs"],
                           obj.get("data_arg"))
    if name is None or data is None:
        raise UsageError(f"checkpoint {path} is not a psp-bench model.pt: pass --model NAME and --data SPEC")
    model = create_model(name, data)
    _load_state(model, _foreign_state_dict(obj, path), path, name)
    return LoadedModel(model, name, data, normalize or default_normalization(name), {}, None)
