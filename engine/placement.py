"""Placement: put *every* tensor an object can reach on one device, and prove it.

``nn.Module.to()`` moves parameters and buffers only. Models also keep tensors in plain attributes,
in lists and dicts, in helper objects and in ``threading.local`` caches (f5_tts's DiT text cache).
Those are what broke the old service after a reload. This module walks all of them:

* :func:`place` moves every reachable tensor (keeping aliases aliased) and clears thread-local
  caches, which another thread's values make impossible to move.
* :func:`stray_tensors` lists the attribute path of every reachable tensor that is not on a device.
* :func:`verify_placement` raises :class:`~engine.errors.PlacementError` naming those paths.

What is walked: ``nn.Module`` parameters, buffers and submodules, then every other entry of
``__dict__`` of modules and plain helper objects, recursing into lists, tuples (named tuples too),
dicts (values) and sets. Not walked: classes, functions, Python modules, objects with only
``__slots__``. Two references to one tensor become two references to one moved tensor; two
different tensors that are views of one storage are moved as two tensors.
"""

from __future__ import annotations

import logging
import threading
import types
from typing import Any, Callable, Iterator

import torch
from torch import nn

from engine.errors import PlacementError

log = logging.getLogger(__name__)

#: fn(tensor, path) -> the tensor to store in that slot (may be the same object).
TensorFn = Callable[[torch.Tensor, str], torch.Tensor]
#: fn(local, path) -> the object to store in that slot.
LocalFn = Callable[[threading.local, str], Any]

_OPAQUE = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType,
           torch.device, torch.dtype)
_MODULE_INTERNALS = frozenset({"_parameters", "_buffers", "_modules"})


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


class _Walker:
    """One traversal: maps tensors through ``on_tensor`` and thread-locals through ``on_local``."""

    def __init__(self, on_tensor: TensorFn, on_local: LocalFn):
        self.on_tensor = on_tensor
        self.on_local = on_local
        self.seen: dict[int, Any] = {}  # id(container) -> its (possibly rebuilt) replacement

    def visit(self, value: Any, path: str) -> Any:
        if isinstance(value, torch.Tensor):
            return self.on_tensor(value, path)
        if isinstance(value, (str, bytes, int, float, bool, type(None))) or isinstance(value, _OPAQUE):
            return value
        key = id(value)
        if key in self.seen:  # cycles and shared containers: visit once
            return self.seen[key]
        self.seen[key] = value
        if isinstance(value, nn.Module):
            self._module(value, path)
        elif isinstance(value, threading.local):
            self.seen[key] = self.on_local(value, path)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                new = self.visit(item, f"{path}[{i}]")
                if new is not item:
                    value[i] = new
        elif isinstance(value, dict):
            for k, item in list(value.items()):
                new = self.visit(item, f"{path}[{k!r}]")
                if new is not item:
                    value[k] = new
        elif isinstance(value, tuple):
            items = [self.visit(item, f"{path}[{i}]") for i, item in enumerate(value)]
            if any(a is not b for a, b in zip(items, value)):
                rebuilt = type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
                self.seen[key] = rebuilt
        elif isinstance(value, (set, frozenset)):
            items = [self.visit(item, f"{path}{{{i}}}") for i, item in enumerate(value)]
            if any(a is not b for a, b in zip(items, value)):
                if isinstance(value, set):
                    value.clear()
                    value.update(items)
                else:
                    self.seen[key] = frozenset(items)
        elif hasattr(value, "__dict__"):
            self._attributes(value, path, skip=frozenset())
        return self.seen[key]

    def _module(self, module: nn.Module, path: str) -> None:
        for name, param in module._parameters.items():
            if param is not None:
                module._parameters[name] = self.on_tensor(param, _join(path, name))
        for name, buf in module._buffers.items():
            if buf is not None:
                module._buffers[name] = self.on_tensor(buf, _join(path, name))
        for name, child in module._modules.items():
            if child is not None:
                self.visit(child, _join(path, name))
        self._attributes(module, path, skip=_MODULE_INTERNALS)

    def _attributes(self, obj: Any, path: str, skip: frozenset[str]) -> None:
        attrs = vars(obj)
        for name, item in list(attrs.items()):
            if name in skip:
                continue
            new = self.visit(item, _join(path, name))
            if new is not item:
                attrs[name] = new


def map_tensors(obj: Any, on_tensor: TensorFn, on_local: LocalFn | None = None) -> Any:
    """Walk everything reachable from ``obj`` and store ``on_tensor(t, path)`` in each tensor slot.

    Returns ``obj`` itself, or its rebuilt replacement when ``obj`` is a tuple or a tensor.
    ``on_local`` decides what happens to ``threading.local`` objects (default: walk the current
    thread's view of them in place).
    """

    def walk_local(local: threading.local, path: str) -> threading.local:
        walker._attributes(local, path, skip=frozenset())
        return local

    walker = _Walker(on_tensor, on_local or walk_local)
    return walker.visit(obj, "")


def iter_tensors(obj: Any) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield ``(path, tensor)`` for every reachable tensor, aliases once each under their first path."""
    found: list[tuple[str, torch.Tensor]] = []
    ids: set[int] = set()

    def record(t: torch.Tensor, path: str) -> torch.Tensor:
        if id(t) not in ids:
            ids.add(id(t))
            found.append((path, t))
        return t

    map_tensors(obj, record)
    return iter(found)


def _same_device(t: torch.Tensor, device: torch.device) -> bool:
    if t.device.type != device.type:
        return False
    if device.type == "cuda":  # "cuda" means the current CUDA device
        want = device.index if device.index is not None else torch.cuda.current_device()
        return t.device.index == want
    return device.index is None or t.device.index == device.index


def place(obj: Any, device: str | torch.device, dtype: torch.dtype | None = None, *,
          pin_memory: bool = False, non_blocking: bool = False) -> Any:
    """Move every tensor reachable from ``obj`` to ``device``; cast floating tensors to ``dtype``.

    Parameters stay the same ``nn.Parameter`` objects where the tensor types allow it (their
    ``.data`` is replaced, as ``Module.to`` does); aliases stay aliased. ``threading.local`` caches are replaced by empty
    ones, since other threads' entries can neither be seen nor moved. ``pin_memory`` pins CPU
    results (for fast host-to-device copies later). Returns ``obj`` (or its replacement, for a
    bare tensor or tuple).
    """
    target = torch.device(device)
    moved: dict[int, torch.Tensor] = {}

    def convert(t: torch.Tensor) -> torch.Tensor:
        want_dtype = dtype if dtype is not None and t.is_floating_point() else t.dtype
        out = t.to(device=target, dtype=want_dtype, non_blocking=non_blocking)
        if pin_memory and out.device.type == "cpu" and not out.is_pinned():
            out = out.pin_memory()
        return out

    def move(t: torch.Tensor, path: str) -> torch.Tensor:
        if id(t) in moved:
            return moved[id(t)]
        if isinstance(t, nn.Parameter):
            data = convert(t.data)
            if torch._has_compatible_shallow_copy_type(t.data, data):
                t.data = data  # same Parameter object, as Module.to does
                result: torch.Tensor = t
            else:  # e.g. to/from `meta`: a new Parameter, as Module.to does too
                result = nn.Parameter(data, requires_grad=t.requires_grad)
        else:
            result = convert(t)
        moved[id(t)] = result
        return result

    def reset_local(local: threading.local, path: str) -> threading.local:
        log.debug("placement: clearing thread-local cache at %s", path or "<root>")
        try:
            return type(local)()
        except TypeError:  # a subclass that needs arguments: empty the visible view instead
            vars(local).clear()
            return local

    return map_tensors(obj, move, reset_local)


def stray_tensors(obj: Any, device: str | torch.device) -> list[str]:
    """Attribute paths of every reachable tensor that is not on ``device`` (``[]`` when all is well)."""
    target = torch.device(device)
    return [path for path, t in iter_tensors(obj) if not _same_device(t, target)]


def verify_placement(obj: Any, device: str | torch.device) -> None:
    """Raise :class:`PlacementError` naming every tensor reachable from ``obj`` that is off ``device``."""
    strays = stray_tensors(obj, device)
    if strays:
        raise PlacementError(str(torch.device(device)), strays)
