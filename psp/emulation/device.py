"""CUDA's device rules, enforced on a CPU: device mixing found without a GPU.

On a CPU every tensor lives on the same device, so a tensor made without ``device=`` next to model tensors (an index,
a mask, a buffer) goes unnoticed until a user runs on a GPU node and the job dies with "Expected all tensors to be on
the same device". Inside ``EmulatedCuda()`` the CPU plays a CUDA device:

- tensors moved there (``.to("cuda")``, ``.cuda()``, ``Module.to``), made there (a factory with ``device="cuda"``) or
  computed from such tensors are *on the device*: they report ``device == cuda:0`` and ``is_cuda``. The mark follows
  the storage, so views, ``.data``, ``.grad`` and parameters rebuilt by ``Module.to`` carry it;
- every other tensor is a host tensor;
- an operation that mixes device tensors with host tensors of more than one element raises ``DeviceMixError`` naming
  the operation, where CUDA would raise. Stricter than CUDA in one respect: host index tensors are refused in
  indexing too (CUDA accepts them by copying them to the device, blocking, at every step);
- a factory asked for the device with a CPU ``generator`` raises, as CUDA does;
- ``.item()``, ``.tolist()``, boolean-mask indexing and friends on device tensors are counted in ``syncs``: each is a
  host synchronisation;
- ``torch.autocast("cuda", ...)`` runs as CPU autocast, so bfloat16 paths execute for real;
- ``torch.cuda.is_available()`` is True and the few ``torch.cuda`` calls the suite makes (synchronize, device name,
  peak-memory counters) are stand-ins, as is ``pin_memory()`` (the host tensor itself).

Arithmetic is the CPU's: this checks where tensors live, not GPU numerics (see ``psp.emulation.precision``).
"""

import contextlib
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.multiprocessing.reductions import StorageWeakRef
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_map

DEVICE = torch.device("cuda", 0)
_HOST = torch.device("cpu")
_SYNCS = {"item", "tolist", "__bool__", "__float__", "__int__", "__index__", "numpy", "nonzero", "masked_select",
          "unique"}
_INDEXING = {"__getitem__", "__setitem__"}
_CROSS_DEVICE = {"copy_", "data.__set__", "_has_compatible_shallow_copy_type"}  # allowed between devices


class DeviceMixError(RuntimeError):
    """An operation mixed tensors of the emulated device with host tensors, as CUDA refuses."""


def _name(func: Callable) -> str:
    if getattr(func, "__name__", "") in ("__get__", "__set__"):
        return f"{func.__self__.__name__}.{func.__name__}"
    return getattr(func, "__name__", repr(func))


def _is_cuda(device: object) -> bool:
    return device is not None and torch.device(device).type == "cuda"


class EmulatedCuda(TorchFunctionMode):
    """``with EmulatedCuda() as cuda: ...``: run code as if ``torch.device("cuda")`` were this CPU (see the module
    docstring); ``cuda.syncs`` counts host synchronisations by operation."""

    def __init__(self) -> None:
        super().__init__()
        self._storages: dict[int, StorageWeakRef] = {}
        self._sweep_at = 4096
        self.syncs: Counter[str] = Counter()
        self._patches: contextlib.ExitStack | None = None

    # --- marks ---------------------------------------------------------------------------------------------------

    def on_device(self, t: object) -> bool:
        """Whether ``t`` is a tensor of the emulated device."""
        if not isinstance(t, torch.Tensor):
            return False
        with torch._C.DisableTorchFunction():
            try:
                key = t.untyped_storage()._cdata
            except (RuntimeError, NotImplementedError):  # no storage (sparse, nested): a host tensor
                return False
        ref = self._storages.get(key)
        return ref is not None and not ref.expired()

    def _mark(self, result: Any) -> Any:
        for t in tree_flatten(result)[0]:
            if isinstance(t, torch.Tensor):
                with torch._C.DisableTorchFunction():
                    storage = t.untyped_storage()
                self._storages[storage._cdata] = StorageWeakRef(storage)
        if len(self._storages) > self._sweep_at:  # forget freed storages, so that a long run does not grow
            self._storages = {k: ref for k, ref in self._storages.items() if not ref.expired()}
            self._sweep_at = 2 * len(self._storages) + 4096
        return result

    # --- the mode ------------------------------------------------------------------------------------------------

    def __torch_function__(self, func: Callable, types: tuple, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        name = _name(func)
        if name.endswith(".__get__"):
            return self._get(name.removesuffix(".__get__"), func, args)
        if name in ("to", "cuda", "cpu") and args and isinstance(args[0], torch.Tensor):
            return self._move(name, args[0], args[1:], kwargs)
        if name == "pin_memory":  # page-locked host memory needs a driver; the host tensor stands in for it
            return args[0]
        if kwargs.get("device") is not None:
            return self._make(name, func, args, kwargs)
        if name == "__deepcopy__":  # args: (tensor, memo); the memo holds all copied so far: flattening it is quadratic
            result = func(*args, **kwargs)
            return self._mark(result) if self.on_device(args[0]) else result
        tensors = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        marks = [self.on_device(t) for t in tensors]
        device = any(marks)
        if device and (name in _SYNCS or (name in _INDEXING and any(t.dtype == torch.bool for t in tensors[1:]))):
            self.syncs[name] += 1  # a boolean mask's size is only known once the device has computed it
        if device and name not in _CROSS_DEVICE:
            host = [t for t, marked in zip(tensors, marks, strict=True) if t.dim() > 0 and not marked]
            if host:
                shapes = ", ".join(str(tuple(t.shape)) for t in host[:3])
                raise DeviceMixError(f"{name}: tensors on {DEVICE} mixed with host tensors of shape {shapes} "
                                     f"(CUDA raises: expected all tensors to be on the same device)")
        result = func(*args, **kwargs)
        return self._mark(result) if device else result

    def _get(self, prop: str, func: Callable, args: tuple) -> Any:
        tensor = args[0]
        if prop == "device":
            return DEVICE if self.on_device(tensor) else func(*args)
        if prop in ("is_cuda", "is_cpu"):
            return self.on_device(tensor) == (prop == "is_cuda")
        result = func(*args)
        if prop == "grad" and result is not None and self.on_device(tensor):
            self._mark(result)  # autograd allocates gradients on the real (host) device; views share the mark already
        return result

    def _move(self, name: str, tensor: torch.Tensor, args: tuple, kwargs: dict) -> torch.Tensor:
        here = self.on_device(tensor)
        if name == "to":
            device, dtype, _, memory_format = torch._C._nn._parse_to(*args, **kwargs)
            if args and isinstance(args[0], torch.Tensor):  # to(other): other's (emulated) device and dtype
                device = DEVICE if self.on_device(args[0]) else _HOST
        else:
            device, dtype, memory_format = (DEVICE if name == "cuda" else _HOST), None, None
        there = here if device is None else _is_cuda(device)
        if here and not there:
            self.syncs[f"{name}(cpu)"] += 1  # a device-to-host copy waits for the device
        # Between devices a real copy, so that the new storage alone carries (or lacks) the mark.
        out = tensor.to(_HOST, dtype=dtype, copy=here != there or bool(kwargs.get("copy")),
                        memory_format=memory_format or torch.preserve_format)
        return self._mark(out) if there else out

    def _make(self, name: str, func: Callable, args: tuple, kwargs: dict) -> Any:
        """A factory (or ``new_*``, ``*_like``) with an explicit device: the device alone decides the mark."""
        if not _is_cuda(kwargs["device"]):
            return func(*args, **kwargs)
        generator = kwargs.get("generator")
        if generator is not None and generator.device.type != "cuda":
            raise DeviceMixError(f"{name}: a {generator.device.type} generator for a tensor on {DEVICE} "
                                 f"(CUDA raises: expected a 'cuda' device type for generator)")
        return self._mark(func(*args, **{**kwargs, "device": _HOST}))

    # --- torch.cuda and autocast stand-ins ----------------------------------------------------------------------

    def __enter__(self) -> "EmulatedCuda":
        self._patches = contextlib.ExitStack()
        for module, attr, value in _stand_ins():
            self._patches.enter_context(_patched(module, attr, value))
        return super().__enter__()

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self._patches.close()


class _HostAutocast(torch.autocast):
    """``torch.autocast`` with "cuda" run as CPU autocast (bfloat16 is the dtype both support)."""

    def __init__(self, device_type: str, *args: object, **kwargs: object) -> None:
        super().__init__("cpu" if device_type == "cuda" else device_type, *args, **kwargs)


def _stand_ins() -> list[tuple[object, str, object]]:
    return [(torch.cuda, "is_available", lambda: True), (torch.cuda, "device_count", lambda: 1),
            (torch.cuda, "synchronize", lambda device=None: None),
            (torch.cuda, "get_device_name", lambda device=None: "emulated CUDA (CPU)"),
            (torch.cuda, "max_memory_allocated", lambda device=None: 0),
            (torch.cuda, "reset_peak_memory_stats", lambda device=None: None),
            (torch.accelerator, "current_accelerator", lambda check_available=False: None),  # no stream to query
            (torch, "autocast", _HostAutocast)]


@contextlib.contextmanager
def _patched(module: object, attr: str, value: object) -> Iterator[None]:
    old = getattr(module, attr)
    setattr(module, attr, value)
    try:
        yield
    finally:
        setattr(module, attr, old)


def host_copy(tree: Any) -> Any:
    """Tensors of a nested structure copied to the host (to compare results made under emulation with others)."""
    return tree_map(lambda t: t.detach().cpu().clone() if isinstance(t, torch.Tensor) else t, tree)
