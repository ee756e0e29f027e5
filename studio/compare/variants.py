"""A variant of an A/B comparison: a model and the settings it is run with, in one canonical form.

Two variants that mean the same thing (``32`` and ``32.0`` NFE steps, a speed of ``1`` and ``1.0``)
have the same :meth:`Variant.key`, so the tally counts them as one; :func:`pair_key` is the same
whichever variant was A and which was B.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Mapping, Sequence

from engine.errors import InputError
from engine.options import validate_options

FIELDS = ("model", "nfe_step", "speed", "cross_fade")
MAX_VARIANT_JSON_CHARS = 2000  # a variant is four short fields; anything longer is not one


@dataclasses.dataclass(frozen=True)
class Variant:
    """One side of a comparison: ``model`` (a name from ``backend.settings.models``) and settings."""

    model: str
    nfe_step: int
    speed: float
    cross_fade: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return dataclasses.asdict(self)

    def key(self) -> str:
        """Canonical JSON (sorted keys, no spaces): equal for variants that mean the same."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def label(self, show_model: bool = True) -> str:
        """A short human name: ``f5-tts · NFE 16 · speed 1 · cross-fade 0.15 s``."""
        parts = [self.model] if show_model else []
        parts += [f"NFE {self.nfe_step}", f"speed {self.speed:g}", f"cross-fade {self.cross_fade:g} s"]
        return " · ".join(parts)

    @classmethod
    def from_key(cls, key: str) -> "Variant":
        """The inverse of :meth:`key` (rows read back from the verdict log)."""
        data = json.loads(key)
        return cls(str(data["model"]), int(data["nfe_step"]), float(data["speed"]), float(data["cross_fade"]))


def make_variant(side: str, model: Any, nfe_step: Any, speed: Any, cross_fade: Any, models: Sequence[str]) -> Variant:
    """A checked :class:`Variant`: the model must be one of ``models`` (empty: the first, the
    default); the settings are checked with the engine's own rules and words."""
    name = str(model or "").strip() or models[0]
    if name not in models:
        raise InputError(f"Variant {side}: unknown model {name!r}; this server offers: {', '.join(models)}.")
    try:
        options = validate_options(nfe_step, speed, cross_fade, False, 0)
    except InputError as error:
        raise InputError(f"Variant {side}: {error}") from None
    return Variant(name, int(options.nfe_step), round(float(options.speed), 4), round(float(options.cross_fade), 4))


def parse_variant(side: str, raw: Any, models: Sequence[str], defaults: Mapping[str, Any]) -> Variant:
    """A variant as the API sends it: a JSON object (or its text) with any of :data:`FIELDS`;
    missing fields take ``defaults`` (the server's NFE steps, speed and cross-fade)."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raw = {}
    if isinstance(raw, str):
        if len(raw) > MAX_VARIANT_JSON_CHARS:
            raise InputError(f"variant_{side.lower()} is {len(raw)} characters long; a variant is a small JSON object.")
        try:
            raw = json.loads(raw)
        except ValueError as error:
            raise InputError(f"variant_{side.lower()} is not valid JSON ({error.msg}).") from None
    if not isinstance(raw, dict):
        raise InputError(f"variant_{side.lower()} must be a JSON object with the fields {', '.join(FIELDS)}.")
    unknown = sorted(set(map(str, raw)) - set(FIELDS))
    if unknown:
        raise InputError(f"variant_{side.lower()} has unknown field(s) {', '.join(unknown)}; "
                         f"a variant has {', '.join(FIELDS)}.")
    values = {**defaults, **raw}
    return make_variant(side, values.get("model"), values.get("nfe_step"), values.get("speed"),
                        values.get("cross_fade"), models)


def pair_key(first: Variant, second: Variant) -> str:
    """The key of the pair {first, second}: the same in either order."""
    return "\n".join(sorted((first.key(), second.key())))
