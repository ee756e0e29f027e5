"""Errors the engine raises on purpose. Their messages are written for the person using the app:
the UI and the API show ``str(error)`` as it is, never a traceback."""

from __future__ import annotations


class EngineError(Exception):
    """Base class: a failure with a message that is safe and useful to show to a user."""


class InputError(EngineError):
    """The request itself is wrong (bad audio, empty text, out-of-range setting). Fix the input."""


class BusyError(EngineError):
    """Too many requests are already waiting for the engine. Try again shortly."""


class ModelUnavailableError(EngineError):
    """The model could not be loaded (missing, corrupt or unreachable weights). Names what is missing."""


class PlacementError(EngineError):
    """Tensors were left off the engine's device after placement; ``paths`` names each of them."""

    def __init__(self, device: str, paths: list[str]):
        self.device = device
        self.paths = list(paths)
        shown = ", ".join(self.paths[:8]) + (f" (+{len(self.paths) - 8} more)" if len(self.paths) > 8 else "")
        super().__init__(f"{len(self.paths)} tensor(s) not on {device}: {shown}")


class UnavailableError(EngineError):
    """The service cannot take this request now, for a reason outside the request (no worker is
    running, the broker cannot be reached, no worker finished in time). Try again later; the API
    answers 503 with ``Retry-After``."""

    def __init__(self, message: str, retry_after_s: int = 10):
        super().__init__(message)
        self.retry_after_s = int(retry_after_s)
