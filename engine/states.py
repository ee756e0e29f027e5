"""The engine's lifecycle as an explicit state machine: the states and every allowed transition.

    UNLOADED --load--> LOADING --ok--> READY --idle/unload--> UNLOADING --> UNLOADED
                          |                                                  ^
                          +--error--> FAILED --next request / load()--> LOADING

``READY -> READY`` is not a transition: re-placing the model (CPU rerun, back to the accelerator)
happens inside READY while the request holding the inference turn owns the model.
"""

from __future__ import annotations

import enum


class EngineState(str, enum.Enum):
    """Where the model is in its lifecycle (a ``str`` enum: ``EngineState.READY == "ready"``)."""

    UNLOADED = "unloaded"  # no model on the device (a host copy may be kept)
    LOADING = "loading"  # one thread is loading; others wait for it (single flight)
    READY = "ready"  # placed and verified on the device; requests may run
    UNLOADING = "unloading"  # being freed; arriving requests wait, then reload
    FAILED = "failed"  # the last load failed; the next request or load() tries again


#: The only transitions the engine may make. Anything else is a bug and raises.
TRANSITIONS: dict[EngineState, frozenset[EngineState]] = {
    EngineState.UNLOADED: frozenset({EngineState.LOADING}),
    EngineState.LOADING: frozenset({EngineState.READY, EngineState.FAILED}),
    EngineState.READY: frozenset({EngineState.UNLOADING}),
    EngineState.UNLOADING: frozenset({EngineState.UNLOADED}),
    EngineState.FAILED: frozenset({EngineState.LOADING, EngineState.UNLOADING}),
}


class IllegalTransition(RuntimeError):
    """A transition outside ``TRANSITIONS`` was attempted (a programming error)."""


def check_transition(current: EngineState, target: EngineState) -> EngineState:
    """Return ``target`` if ``current -> target`` is allowed, else raise :class:`IllegalTransition`."""
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(f"illegal engine transition {current.name} -> {target.name}")
    return target
