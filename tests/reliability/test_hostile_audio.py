"""Decompression bombs in a reference clip: a small FLAC that holds an hour (full run: six hours) of
audio. The reader decodes at most what it keeps, so the peak memory of a fresh process reading it
stays under a fixed ceiling, and a header that lies about the length is cut, not trusted.

Each read runs in a small subprocess (numpy + soundfile + engine.audio_input) so its peak resident
memory (VmHWM) is the reader's alone. Decoding the one-hour bomb whole took ~930 MB there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.app_process import ROOT

RSS_CEILING_MB = 150  # python + numpy + soundfile is ~40 MB; the bounded read adds a few MB
FULL = os.environ.get("RELIABILITY_FULL", "").strip() in ("1", "true", "yes")

_READER = """
import json, sys
from engine.audio_input import read_reference
from engine.errors import InputError
try:
    clip = read_reference(sys.argv[1], 12.0)
    out = {"seconds": clip.seconds, "original": clip.original_seconds}
except InputError as error:
    out = {"refused": str(error)}
with open("/proc/self/status") as handle:
    out["hwm_mb"] = next(int(l.split()[1]) for l in handle if l.startswith("VmHWM")) / 1024
print(json.dumps(out))
"""


def make_bomb(path: Path, minutes: int, rate: int) -> Path:
    """3 s of a tone, then ``minutes`` of silence: compresses to a few hundred KB."""
    import soundfile as sf

    with sf.SoundFile(str(path), "w", samplerate=rate, channels=1, format="FLAC", subtype="PCM_16") as out:
        out.write((0.3 * np.sin(2 * np.pi * 220 * np.arange(3 * rate) / rate)).astype(np.float32))
        silence = np.zeros(60 * rate, dtype=np.float32)
        for _ in range(minutes):
            out.write(silence)
    return path


def read_in_subprocess(path: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", _READER, str(path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def hide_length(path: Path) -> Path:
    """Zero STREAMINFO's total-samples field: the header now says 'length unknown'."""
    data = bytearray(path.read_bytes())
    assert data[:4] == b"fLaC"
    data[21] &= 0xF0
    data[22:26] = b"\0\0\0\0"
    target = path.with_name("lying.flac")
    target.write_bytes(data)
    return target


@pytest.mark.parametrize("minutes,rate", [(60, 16000)] + ([(360, 24000)] if FULL else []))
def test_a_flac_bomb_is_read_in_bounded_memory(tmp_path, minutes, rate, figures):
    bomb = make_bomb(tmp_path / "bomb.flac", minutes, rate)
    assert bomb.stat().st_size < 2_000_000
    result = read_in_subprocess(bomb)
    assert result["hwm_mb"] < RSS_CEILING_MB, result
    assert 3.0 <= result["seconds"] <= 3.3, result  # the tone, trimmed of the silence after it
    assert result["original"] == pytest.approx(3 + 60 * minutes, abs=0.1)  # the header's length, not decoded
    figures.put("bad_inputs", f"flac bomb {minutes} min", f"peak {result['hwm_mb']:.0f} MB")


def test_a_header_that_hides_the_length_is_cut_at_the_decode_limit(tmp_path, figures):
    from engine.audio_input import decode_limit_seconds

    lying = hide_length(make_bomb(tmp_path / "bomb.flac", 30, 16000))
    result = read_in_subprocess(lying)
    assert result["hwm_mb"] < RSS_CEILING_MB, result
    assert result["original"] == pytest.approx(decode_limit_seconds(12.0), abs=0.01)  # stopped there
    figures.put("bad_inputs", "flac with no length in its header", f"peak {result['hwm_mb']:.0f} MB")


def test_an_absurd_header_rate_is_refused(tmp_path):
    import soundfile as sf

    path = tmp_path / "fast.wav"
    sf.write(str(path), np.zeros(10, dtype=np.float32), 400_000, format="WAV")
    result = read_in_subprocess(path)
    assert "400000 Hz" in result["refused"] and "384000" in result["refused"]
