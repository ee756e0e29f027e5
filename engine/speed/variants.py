"""Forward variants of f5_tts modules, registered by name and swapped in in one place.

A variant is a subclass of an f5_tts class that overrides ``forward`` (made once, cached), so a
module can be switched to it with ``module.__class__ = ...`` without copying its tensors. Only
the fast mode's shadow copy uses variants; the engine's own model keeps f5_tts's classes.

    register_variant("fused_block", "f5_tts.model.modules:DiTBlock", forward)
    swap_in(block, "fused_block")          # block now runs `forward`
    variant_name(block)                    # "fused_block"
"""

from __future__ import annotations

import dataclasses
import importlib
import threading
from typing import Any, Callable

from torch import nn


@dataclasses.dataclass(frozen=True)
class Variant:
    """A named ``forward`` for instances of exactly one f5_tts class (``"module:Class"``)."""

    name: str
    base_path: str
    forward: Callable[..., Any]

    def base(self) -> type:
        """The f5_tts class, imported on first use (f5_tts is slow to import)."""
        module, _, name = self.base_path.partition(":")
        return getattr(importlib.import_module(module), name)


_REGISTRY: dict[str, Variant] = {}
_CLASSES: dict[str, type] = {}
_LOCK = threading.Lock()


def register_variant(name: str, base_path: str, forward: Callable[..., Any]) -> Variant:
    """Register ``forward`` as variant ``name`` of ``base_path``; registering the same again is a no-op."""
    variant = Variant(name, base_path, forward)
    with _LOCK:
        existing = _REGISTRY.get(name)
        if existing is not None and existing != variant:
            raise ValueError(f"variant {name!r} is already registered for {existing.base_path}")
        _REGISTRY[name] = variant
    return variant


def variant_class(name: str) -> type:
    """The subclass that runs variant ``name`` (made once)."""
    with _LOCK:
        if name not in _REGISTRY:
            raise KeyError(f"unknown variant {name!r}; registered: {', '.join(sorted(_REGISTRY)) or 'none'}")
        if name not in _CLASSES:
            variant = _REGISTRY[name]
            base = variant.base()
            _CLASSES[name] = type(f"{base.__name__}_{name}", (base,),
                                  {"forward": variant.forward, "__module__": __name__, "variant_name": name})
        return _CLASSES[name]


def swap_in(module: nn.Module, name: str) -> None:
    """Make ``module`` (an instance of exactly the variant's base class) run variant ``name``."""
    cls = variant_class(name)
    base = cls.__mro__[1]
    if type(module) is not base:
        raise TypeError(f"variant {name!r} applies to {base.__name__}, not {type(module).__name__}")
    module.__class__ = cls


def variant_name(module: nn.Module) -> str | None:
    """The variant ``module`` runs, or None for the f5_tts class itself."""
    return getattr(type(module), "variant_name", None)


def registered() -> dict[str, str]:
    """Variant name -> the class it applies to."""
    with _LOCK:
        return {name: variant.base_path for name, variant in _REGISTRY.items()}
