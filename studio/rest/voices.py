"""Which voices the REST API offers, and how a request's ``voice`` becomes a reference clip.

The voices come from a :class:`VoiceSource`: the voice library (``studio.voices.library``: the
saved voices and the bundled, read-only example voices), handed to ``create_app`` where the app is
assembled. A name is only
ever looked up in that catalog, never joined into a path, so no request can point the engine at a
file outside the voice store.

OpenAI's own voice names (alloy, echo, nova, ...) are not voices here: they all get the default
voice (``F5_DEFAULT_VOICE``, else the first voice listed), so a client configured for OpenAI
speaks at once. A voice of that very name in the catalog wins. Any other unknown name is a 404
that lists the voices there are.
"""

from __future__ import annotations

import logging
from typing import Protocol

from studio.voices.library import VoiceEntry

log = logging.getLogger(__name__)

#: The voice names OpenAI's speech API knows (openai.types.audio.speech_create_params.Voice).
OPENAI_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse",
                 "marin", "cedar")


class VoiceSource(Protocol):
    """A catalog of voices (the voice library, or a stand-in in tests)."""

    def list(self) -> list[VoiceEntry]:
        """Every voice."""

    def get(self, name: str) -> VoiceEntry:
        """The voice called ``name``; raises a ``LookupError`` when there is none."""


class UnknownVoice(LookupError):
    """The request named a voice that is not in the catalog; ``available`` lists the ones that are."""

    def __init__(self, message: str, available: list[str]):
        super().__init__(message)
        self.available = available


class UnusableVoice(ValueError):
    """The voice exists but its clip is broken (the library says why)."""


class VoiceCatalog:
    """Resolves a request's voice name against a :class:`VoiceSource` (see the module docstring)."""

    def __init__(self, source: VoiceSource, default_voice: str = ""):
        self.source = source
        self.default_voice = default_voice

    def entries(self) -> list[VoiceEntry]:
        """Every voice of the source."""
        return list(self.source.list())

    def default_name(self) -> str | None:
        """The voice OpenAI's names get: ``F5_DEFAULT_VOICE``, else the first usable voice listed."""
        if self.default_voice:
            return self.default_voice
        usable = [entry.name for entry in self.entries() if not entry.error]
        return usable[0] if usable else None

    def resolve(self, requested: str) -> VoiceEntry:
        """The voice entry for ``requested``: the name itself, an OpenAI voice name (the default
        voice), or a unique case-insensitive match. Raises :class:`UnknownVoice` or
        :class:`UnusableVoice`."""
        entry = self._lookup(requested)
        if entry is None and requested.strip().lower() in OPENAI_VOICES:
            default = self.default_name()
            if default is None:
                raise UnknownVoice("No voices are available on this server.", [])
            entry = self._lookup(default)
            if entry is None:
                raise UnknownVoice(f"The voice {requested!r} stands for the default voice {default!r} "
                                   f"(F5_DEFAULT_VOICE), which does not exist. {self._listing()}", self._names())
        if entry is None:
            matches = [name for name in self._names() if name.casefold() == requested.strip().casefold()]
            entry = self._lookup(matches[0]) if len(matches) == 1 else None
        if entry is None:
            raise UnknownVoice(f"The voice {requested[:80]!r} does not exist. {self._listing()}", self._names())
        if entry.error:
            raise UnusableVoice(f"The voice {entry.name!r} cannot be used: {entry.error}")
        return entry

    def _lookup(self, name: str) -> VoiceEntry | None:
        try:
            return self.source.get(name)
        except (LookupError, ValueError):  # not there, or not even a valid name for the catalog
            return None

    def _names(self) -> list[str]:
        return [entry.name for entry in self.entries()]

    def _listing(self) -> str:
        names = self._names()
        if not names:
            return "No voices are available on this server."
        return ("Available voices: " + ", ".join(repr(name) for name in names[:50])
                + (f" (+{len(names) - 50} more)" if len(names) > 50 else "")
                + f"; OpenAI's names ({', '.join(OPENAI_VOICES[:6])}, ...) get the default voice.")
