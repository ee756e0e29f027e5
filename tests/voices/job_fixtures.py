"""What the dialogue, dubbing and shared job tests use: two voices on the bundled clip and the
default settings of a LocalBackend and of the app."""

from __future__ import annotations

from studio.settings import studio_settings
from studio.voices.references import Reference

from tests.voices.conftest import REF_TEXT, REF_WAV
from tests.voices.fakes import settings

SETTINGS = settings()  # a LocalBackend's with the default configuration
APP_LIMITS = studio_settings({})  # the app settings' defaults (script lines, pauses)

ALICE = Reference("Alice", REF_WAV, REF_TEXT)
BOB = Reference("Bob", REF_WAV, REF_TEXT)


def collect(events):
    """Every event of a job, in order."""
    return list(events)
