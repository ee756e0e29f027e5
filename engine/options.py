"""Synthesis settings: their defaults and allowed ranges (the one source the engine, the UI, the
APIs and the docs use) and validation with messages a user can act on."""

from __future__ import annotations

import dataclasses
import math
import secrets

from engine.errors import InputError

#: name -> (min, max). The UI sliders and the API checks use the same bounds.
LIMITS: dict[str, tuple[float, float]] = {
    "nfe_step": (4, 64),
    "speed": (0.3, 2.0),
    "cross_fade": (0.0, 1.0),
    "seed": (0, 2**31 - 1),
    "duration_s": (0.3, 60.0),
}


@dataclasses.dataclass(frozen=True)
class RequestDefaults:
    """What a request gets for a setting it does not give. ``nfe_step`` is the built-in default;
    a deployment changes it with ``F5_DEFAULT_NFE`` (``EngineConfig.default_nfe_step``)."""

    nfe_step: int = 32
    speed: float = 1.0
    cross_fade: float = 0.15
    remove_silence: bool = False
    seed: int = -1  # front-ends: -1 = a random seed (None to the engine); the seed used comes back


DEFAULTS = RequestDefaults()


@dataclasses.dataclass(frozen=True)
class Options:
    """Validated settings of one request (``seed`` already drawn when it was not given)."""

    nfe_step: int
    speed: float
    cross_fade: float
    remove_silence: bool
    seed: int
    duration_s: float | None = None  # wanted length of the generated speech; None: from the text and speed


def _show(bound: float) -> str:
    """A bound as people write it: 2147483647, not 2.14748e+09."""
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"


def _number(name: str, label: str, value: object, integer: bool) -> float:
    if isinstance(value, bool) or value is None:
        raise InputError(f"{label} must be a number.")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"{label} must be a number, not {str(value)[:20]!r}.") from None
    low, high = LIMITS[name]
    if not math.isfinite(number) or not low <= number <= high:
        raise InputError(f"{label} must be between {_show(low)} and {_show(high)} (got {value}).")
    if integer and number != int(number):
        raise InputError(f"{label} must be a whole number (got {value}).")
    return number


def validate_options(nfe_step: object, speed: object, cross_fade: object, remove_silence: object,
                     seed: object, duration_s: object = None) -> Options:
    """Check every setting against ``LIMITS``; ``seed=None`` draws a random seed (front-ends map
    their ``-1`` to None)."""
    if seed is None:
        seed_value = secrets.randbelow(int(LIMITS["seed"][1]) + 1)
    else:
        seed_value = int(_number("seed", "Seed", seed, integer=True))
    return Options(
        nfe_step=int(_number("nfe_step", "NFE steps", nfe_step, integer=True)),
        speed=_number("speed", "Speed", speed, integer=False),
        cross_fade=_number("cross_fade", "Cross-fade", cross_fade, integer=False),
        remove_silence=bool(remove_silence),
        seed=seed_value,
        duration_s=None if duration_s is None else _number("duration_s", "Duration", duration_s, integer=False),
    )
