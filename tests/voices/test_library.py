"""The voice library on a real SQLite file in a temp folder: names, clips, limits, races, damage."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine.audio_input import TAIL_SILENCE_S, read_reference
from engine.errors import InputError
from studio.voices import library as voice_library
from studio.voices.bundled import load_voices
from studio.voices.library import VoiceEntry, VoiceLibrary, VoiceLibraryError, VoiceNotFound
from studio.voices.names import MAX_NAME_CHARS

from .conftest import REF_TEXT, ROOT


def test_save_list_get_rename_delete(library, voice_clips):
    saved = library.save("Alice", voice_clips["padded"], f"  {REF_TEXT} ", note="calm, warm")
    assert isinstance(saved, VoiceEntry) and saved.name == "Alice" and not saved.read_only and saved.error is None
    assert saved.ref_text == REF_TEXT and saved.note == "calm, warm"
    with pytest.raises(dataclasses.FrozenInstanceError):
        saved.name = "Bob"  # type: ignore[misc]
    assert saved.clip_path.parent == library.clips and saved.clip_path.suffix == ".wav"
    assert "Alice" not in saved.clip_path.name, "file names never come from voice names"

    # The clip is stored as the clone tab trims it (silence around it gone), without the model's tail.
    trimmed = read_reference(voice_clips["padded"], 12.0)
    stored, rate = sf.read(str(saved.clip_path), dtype="float32")
    assert rate == trimmed.sample_rate
    assert len(stored) == len(trimmed.samples) - int(TAIL_SILENCE_S * rate)
    np.testing.assert_allclose(stored, trimmed.samples[: len(stored)], atol=1 / 16384)
    assert saved.seconds == pytest.approx(len(stored) / rate)

    names = [entry.name for entry in library.list()]
    bundled = [v.name for v in load_voices()]
    assert names == bundled + ["Alice"], "bundled voices first, then the saved ones"
    assert library.get("aLiCe") == saved

    renamed = library.rename("alice", "Alice Smith")
    assert renamed.name == "Alice Smith" and renamed.clip_path == saved.clip_path
    assert library.rename("alice smith", "ALICE SMITH").name == "ALICE SMITH", "a change of case is a rename"
    with pytest.raises(VoiceNotFound, match="no voice called 'Alice'"):
        library.get("Alice")
    library.delete("alice smith")
    assert not saved.clip_path.exists()
    assert [entry.name for entry in library.list()] == bundled
    with pytest.raises(VoiceNotFound) as missing:
        library.delete("alice smith")
    assert isinstance(missing.value, LookupError) and isinstance(missing.value, InputError)


def test_a_long_clip_is_stored_as_trimmed(library, voice_clips):
    entry = library.save("Long", voice_clips["long"], REF_TEXT)
    assert entry.seconds <= 12.0 and sf.info(str(entry.clip_path)).duration <= 12.0


@pytest.mark.parametrize("name,words", [
    ("", "empty"), ("   ", "empty"), (None, "empty"),
    ("../etc/passwd", "looks like a path"), ("a/b", "looks like a path"), ("a\\b", "looks like a path"),
    ("two..dots", "looks like a path"),
    ("line\nbreak", "control characters"), ("tab\there", "control characters"), ("bell\x07", "control characters"),
    ("x" * (MAX_NAME_CHARS + 1), f"the limit is {MAX_NAME_CHARS}"),
    ("Alice: Bob", "cannot contain ':'"), ("[Alice]", "cannot contain"), ("A=B", "cannot contain"),
    ("Pause", "keyword"), ("speed", "keyword"),
])
def test_bad_names_are_refused_with_the_reason(library, voice_clips, name, words):
    with pytest.raises(VoiceLibraryError, match=words):
        library.save(name, voice_clips["good"], REF_TEXT)
    assert all(entry.read_only for entry in library.list())
    assert list(library.clips.iterdir()) == [], "a refused save leaves no file"


def test_names_are_unique_ignoring_case_and_bundled_names_are_taken(library, voice_clips):
    library.save("Narrator", voice_clips["good"], REF_TEXT)
    with pytest.raises(VoiceLibraryError, match="already exists"):
        library.save("  NARRATOR ", voice_clips["good"], REF_TEXT)
    library.save("Other", voice_clips["good"], REF_TEXT)
    with pytest.raises(VoiceLibraryError, match="already exists"):
        library.rename("Other", "narrator")
    bundled = load_voices()[0].name
    with pytest.raises(VoiceLibraryError, match="bundled voice"):
        library.save(bundled.upper(), voice_clips["good"], REF_TEXT)
    with pytest.raises(VoiceLibraryError, match="bundled voice"):
        library.rename("Other", bundled)
    assert len(list(library.clips.iterdir())) == 2


def test_bundled_voices_are_read_only(library):
    first = library.list()[0]
    assert first.read_only and first.error is None and first.clip_path.is_file() and first.seconds > 1
    with pytest.raises(VoiceLibraryError, match="cannot be renamed"):
        library.rename(first.name, "Mine now")
    with pytest.raises(VoiceLibraryError, match="cannot be deleted"):
        library.delete(first.name)
    assert library.get(first.name.lower()) == first


@pytest.mark.parametrize("clip,words", [("not_audio", "not audio"), ("silent", "silent")])
def test_the_clip_gets_the_clone_tabs_checks(library, voice_clips, clip, words):
    with pytest.raises(InputError, match=words):
        library.save("Bad clip", voice_clips[clip], REF_TEXT)
    with pytest.raises(InputError, match="provide a reference audio"):
        library.save("No clip", None, REF_TEXT)
    assert list(library.clips.iterdir()) == []


def test_transcript_and_note_are_checked(library, voice_clips):
    with pytest.raises(VoiceLibraryError, match="type the reference text"):
        library.save("Quiet", voice_clips["good"], "  ")
    with pytest.raises(VoiceLibraryError, match="note is 301 characters"):
        library.save("Chatty", voice_clips["good"], REF_TEXT, note="n" * 301)


def test_the_library_has_a_limit(library, voice_clips):
    for i in range(library.max_voices):
        library.save(f"Voice {i}", voice_clips["good"], REF_TEXT)
    with pytest.raises(VoiceLibraryError, match="full \\(5 voices, F5_MAX_VOICES\\)"):
        library.save("One too many", voice_clips["good"], REF_TEXT)
    assert len(list(library.clips.iterdir())) == library.max_voices
    library.delete("Voice 0")
    library.save("One too many", voice_clips["good"], REF_TEXT)


def _race(count: int, work) -> list[BaseException | VoiceEntry]:
    """Run ``work(i)`` in ``count`` threads released at once; return each outcome."""
    barrier = threading.Barrier(count)
    outcomes: list = [None] * count

    def run(i: int) -> None:
        barrier.wait()
        try:
            outcomes[i] = work(i)
        except BaseException as error:  # collected and checked by the test
            outcomes[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


def test_two_saves_racing_for_one_name_give_one_voice(library, voice_clips):
    for round_ in range(4):
        name = f"Racer {round_}"
        # Each thread has its own VoiceLibrary (its own connections), as two processes would.
        libraries = [library, VoiceLibrary(library.folder.parent, max_voices=50, bundled=[])]
        outcomes = _race(2, lambda i: libraries[i].save(name, voice_clips["good"], REF_TEXT, note=f"thread {i}"))
        won = [o for o in outcomes if isinstance(o, VoiceEntry)]
        lost = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(won) == 1 and len(lost) == 1, outcomes
        assert isinstance(lost[0], VoiceLibraryError) and "already exists" in str(lost[0])
        assert library.get(name).clip_path == won[0].clip_path
    assert len(list(library.clips.iterdir())) == 4, "the loser's clip file is removed"


RACER = """
import sys, time
from pathlib import Path
from studio.voices.library import VoiceLibrary, VoiceLibraryError
library = VoiceLibrary(Path(sys.argv[1]), max_voices=50, bundled=[])
go = Path(sys.argv[2])
Path(sys.argv[2] + "-ready-" + sys.argv[4][-1]).touch()
while not go.exists():
    time.sleep(0.005)
try:
    library.save("Same name", sys.argv[3], "Some words.", note=sys.argv[4])
    print("saved")
except VoiceLibraryError as error:
    print("refused:", error)
"""


def test_two_processes_racing_for_one_name_give_one_voice(tmp_path, voice_clips):
    go = tmp_path / "go"
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(tmp_path / "data"), str(go), str(voice_clips["good"]),
                                f"process {i}"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for i in range(2)]
    deadline = time.monotonic() + 120
    while not all(Path(f"{go}-ready-{i}").exists() for i in range(2)) and time.monotonic() < deadline:
        time.sleep(0.02)  # both import, then say they are ready; the go file starts them together
    go.touch()
    outputs = sorted(racer.communicate(timeout=120)[0].strip() for racer in racers)
    assert outputs[0].startswith("refused: A voice called 'Same name' already exists"), outputs
    assert outputs[1] == "saved", outputs
    library = VoiceLibrary(tmp_path / "data", bundled=[])
    assert [entry.name for entry in library.list()] == ["Same name"]
    assert [path.name for path in library.clips.iterdir()] == [library.get("same name").clip_path.name]


def test_racing_saves_never_pass_the_limit(library, voice_clips):
    outcomes = _race(8, lambda i: library.save(f"Crowd {i}", voice_clips["good"], REF_TEXT))
    won = [o for o in outcomes if isinstance(o, VoiceEntry)]
    assert len(won) == library.max_voices == 5
    assert all("full" in str(o) for o in outcomes if not isinstance(o, VoiceEntry))
    assert len([e for e in library.list() if not e.read_only]) == 5 == len(list(library.clips.iterdir()))


def test_a_missing_or_damaged_clip_is_reported_on_its_entry(library, voice_clips):
    gone = library.save("Gone", voice_clips["good"], REF_TEXT)
    broken = library.save("Broken", voice_clips["good"], REF_TEXT)
    fine = library.save("Fine", voice_clips["good"], REF_TEXT)
    library.list()  # hashes every clip once
    gone.clip_path.unlink()
    data = bytearray(broken.clip_path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte changed
    broken.clip_path.write_bytes(bytes(data))
    os.utime(broken.clip_path, ns=(time.time_ns(), time.time_ns() + 1_000_000))

    entries = {entry.name: entry for entry in library.list()}
    assert "missing" in entries["Gone"].error and "damaged" in entries["Broken"].error
    assert entries["Fine"].error is None
    assert library.get("Broken").error == entries["Broken"].error
    with pytest.raises(VoiceLibraryError, match="'Gone' cannot be used: its clip file is missing"):
        library.usable("gone")
    assert library.usable("Fine") == fine
    library.delete("Gone")  # a damaged voice can still be deleted
    broken.clip_path.write_bytes(b"short")
    assert "wrong size" in library.get("Broken").error


def test_orphaned_clip_files_are_swept_once_old(library):
    old = library.clips / "0123456789abcdef.wav"
    old.write_bytes(b"left by a crashed save")
    os.utime(old, (time.time() - 2 * voice_library.ORPHAN_AGE_S,) * 2)
    fresh = library.clips / ".fedcba.tmp"
    fresh.write_bytes(b"a save in progress elsewhere")
    VoiceLibrary(library.folder.parent, bundled=[])
    assert not old.exists() and fresh.exists()


def test_a_damaged_index_is_reported_not_raised_at_start(tmp_path, voice_clips):
    folder = tmp_path / "data" / "voices"
    folder.mkdir(parents=True)
    (folder / "index.sqlite3").write_bytes(b"this is not an SQLite database" * 100)
    damaged = VoiceLibrary(tmp_path / "data", bundled=load_voices())  # the app still starts
    with pytest.raises(VoiceLibraryError, match="index cannot be used"):
        damaged.list()
    with pytest.raises(VoiceLibraryError, match="index cannot be used"):
        damaged.save("Alice", voice_clips["good"], REF_TEXT)
    assert damaged.get(load_voices()[0].name).read_only, "bundled voices still work"


def test_the_process_library_follows_the_settings(tmp_path):
    from studio.settings import studio_settings

    settings = studio_settings({"F5_DATA_DIR": str(tmp_path / "elsewhere"), "F5_MAX_VOICES": "7"})
    library = voice_library.make_library(settings, 9.0)  # the backend's clip limit, given where the app is assembled
    assert library.folder == tmp_path / "elsewhere" / "voices" and library.max_voices == 7
    assert library.max_ref_seconds == 9.0 and (library.folder / "index.sqlite3").is_file()
    assert [entry.name for entry in library.list()] == [voice.name for voice in load_voices()]


def test_entries_show_no_server_paths(library, voice_clips):
    shown = library.save("Alice", voice_clips["good"], REF_TEXT).to_dict()
    assert shown == {"name": "Alice", "ref_text": REF_TEXT, "note": "", "read_only": False,
                     "seconds": pytest.approx(shown["seconds"]), "error": None, "model": None}
    assert str(library.folder) not in str(shown)
