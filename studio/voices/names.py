"""Voice names: what a saved voice may be called, and how names are compared.

A name is shown in lists, typed in dialogue scripts (``Name: text`` / ``[Name] text``) and in
dubbing maps (``Speaker=Voice``), so it may not contain the characters those use, nor anything
that looks like a path. Names are compared case-insensitively (``Alice`` and ``ALICE`` are the
same voice); they are never used as file names.
"""

from __future__ import annotations

import re
import unicodedata

from engine.errors import InputError

MAX_NAME_CHARS = 40
#: Words that mean something else in a dialogue script.
RESERVED_NAMES = frozenset({"pause", "speed"})
_SYNTAX_CHARS = set(":[]=")
_WHITESPACE = re.compile(r"\s+")


class VoiceLibraryError(InputError):
    """A voice-library request the user can fix (a bad or taken name, a full library, a bundled
    voice that cannot change, a clip that fails the checks). The message says what to do."""


def name_key(name: str) -> str:
    """The form two names are compared in: Unicode-normalised and case-folded."""
    return unicodedata.normalize("NFKC", name).casefold()


def check_name(raw: object, what: str = "voice name") -> str:
    """The name as it will be stored (trimmed, spaces folded), or :class:`VoiceLibraryError`."""
    if raw is None or not isinstance(raw, str) or not raw.strip():
        raise VoiceLibraryError(f"Please give the {what}: it is empty.")
    name = unicodedata.normalize("NFC", raw.strip())
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in name):
        raise VoiceLibraryError(f"The {what} cannot contain control characters (a line break, a tab, ...).")
    name = _WHITESPACE.sub(" ", name)
    if len(name) > MAX_NAME_CHARS:
        raise VoiceLibraryError(f"The {what} is {len(name)} characters long; the limit is {MAX_NAME_CHARS}.")
    if "/" in name or "\\" in name or ".." in name:
        raise VoiceLibraryError(f"The {what} {name!r} looks like a path: it cannot contain '/', '\\' or '..'.")
    if _SYNTAX_CHARS & set(name):
        raise VoiceLibraryError(f"The {what} {name!r} cannot contain ':', '[', ']' or '=' "
                                "(they mark speakers in dialogue scripts and dubbing maps).")
    if name_key(name) in RESERVED_NAMES:
        raise VoiceLibraryError(f"{name!r} is a dialogue-script keyword; please choose another name.")
    return name
