"""The benchmarks still run (tiny model, seconds): they use the engine's real switches, and the
exact path still matches upstream bit for bit. Timings are printed by the benches, never asserted."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from engine import speed

ROOT = Path(__file__).resolve().parents[2]


def _bench(*args: str) -> str:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


@pytest.mark.skipif(not speed.int8_kernels_available(), reason="no fbgemm int8 kernels in this torch")
def test_cpu_speed_bench_runs_every_variant_through_the_engine():
    out = _bench("bench/cpu_speed.py", "--tiny", "--rounds", "2", "--nfe", "4",
                 "--variants", "upstream,exact,fast,fast_cfg")
    assert "exact vs upstream: max abs diff 0," in out  # the exact path is upstream's arithmetic
    for variant in ("exact", "fast", "fast_cfg"):
        assert re.search(rf"^{variant}\s+[\d.]+\s+[\d.]+\s+[\d.]+x", out, re.M), out
    snr = float(re.search(r"fast vs exact \(fp32\): SNR ([\d.]+) dB", out).group(1))
    assert snr > 20


def test_ttfa_bench_streams_a_smaller_first_chunk():
    """The bench runs both ways and reports both; the split's first chunk is the shorter one (the
    time it saves is the bench's figure to print, not this test's to assert)."""
    out = _bench("bench/ttfa.py", "--rounds", "1")
    fractions = dict(re.findall(r"^\s+(baseline|split)\s+TTFA.*TTFA/total ([\d.]+)", out, re.M))
    assert set(fractions) == {"baseline", "split"}, out
    assert all(0.0 < float(value) <= 1.0 for value in fractions.values()), fractions
    first_baseline_chunk = int(re.search(r"chunks \((\d+),", out).group(1))
    first_split_chunk = re.search(r"first chunk split: (['\"])(.*?)\1 \|", out).group(2)
    assert 0 < len(first_split_chunk) < first_baseline_chunk / 2, out


def test_rest_overhead_bench_serves_the_engines_own_audio():
    out = _bench("bench/rest_overhead.py", "--rounds", "2", "--encode-repeats", "2", "--nfe", "4")
    assert "REST wav == engine audio (int16): True" in out, out
    assert re.search(r"median ratio REST/engine: [\d.]+", out), out
    for name in ("mp3", "opus", "aac", "flac", "wav", "pcm"):
        assert re.search(rf"^\s+{name}\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+\d+$", out, re.M), out
