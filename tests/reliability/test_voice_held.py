"""Deleting a voice mid-dialogue (issue 19) discarded the finished lines: each line read the voice's
clip from the library again, and the clip was gone. The dialogue now copies each library clip
once, when it starts (``resolve(..., hold=folder)``), and every line reads the copy."""

from __future__ import annotations

from studio.voices.library import VoiceLibrary
from studio.voices.references import resolve

from .conftest import REF_TEXT, REF_WAV


def test_a_held_clip_outlives_the_voice(tmp_path):
    library = VoiceLibrary(tmp_path / "library")
    library.save("Alice", REF_WAV, REF_TEXT)
    hold = tmp_path / "held"
    hold.mkdir()
    references = resolve(["Alice", "alice", "ALICE"], library, {}, hold=hold)
    [reference] = references.values()
    assert reference.clip_path.parent == hold and reference.clip_path.read_bytes() == \
        library.get("Alice").clip_path.read_bytes()
    library.delete("Alice")  # mid-dialogue
    assert reference.clip_path.is_file() and reference.ref_text == REF_TEXT


def test_without_hold_the_library_clip_is_used(tmp_path):
    library = VoiceLibrary(tmp_path / "library")
    library.save("Bob", REF_WAV, REF_TEXT)
    [reference] = resolve(["Bob"], library, {}).values()
    assert reference.clip_path == library.get("Bob").clip_path
