"""What the page says about a job in progress or a refused request, where it happened.

* :func:`error_html`: a problem shown next to the field that caused it (one problem per line), in a
  component of its own, so the "Error" badge Gradio puts on a failed event's outputs never covers
  an input, and the message stays until the next action (a toast closes after a few seconds).
* :class:`JobClock`: the elapsed time of a whole job and an estimate of the time left, for long
  jobs (dialogue, dubbing) whose progress text would otherwise restart with every line.
"""

from __future__ import annotations

import html
import time
from typing import Callable

from studio.public import public_text

MIN_FRACTION_FOR_ESTIMATE = 0.02  # before 2 % of a job is done the estimate is noise: none is shown


def error_html(message: str) -> str:
    """``message`` (its lines: one problem each) as the page's in-place error block."""
    lines = [line.strip() for line in public_text(str(message)).splitlines() if line.strip()]
    body = "".join(f"<p>{html.escape(line)}</p>" for line in lines)
    return f'<div class="field-error" role="alert">{body}</div>'


def clock_text(seconds: float) -> str:
    """``m:ss`` (or ``h:mm:ss``) for a progress line."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class JobClock:
    """Elapsed time since the job started and the time left, estimated from the fraction done so
    far (elapsed x (1 - f) / f). ``clock`` is injectable (tests)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._start = clock()

    def elapsed_s(self) -> float:
        """Seconds since the job started."""
        return self._clock() - self._start

    def text(self, fraction: float | None) -> str:
        """'1:02 elapsed, about 9:40 left' (no estimate before 2 % is done)."""
        elapsed = self.elapsed_s()
        shown = f"{clock_text(elapsed)} elapsed"
        if fraction is not None and MIN_FRACTION_FOR_ESTIMATE <= fraction < 1.0:
            shown += f", about {clock_text(elapsed * (1.0 - fraction) / fraction)} left"
        return shown

    def rewrite(self, base: Callable[[float | None, str], tuple[float | None, str]]):
        """A progress rewrite (for ``ProgressRelay``) that adds this clock to ``base``'s text."""
        def rewrite(fraction: float | None, message: str) -> tuple[float | None, str]:
            fraction, message = base(fraction, message)
            if fraction is None:  # a model load: its own words, no estimate
                return fraction, message
            return fraction, f"{message} · {self.text(fraction)}"

        return rewrite
