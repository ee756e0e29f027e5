"""How the suite compares audio: exactly where equality holds by construction, within a measured bound
where it does not.

Equal by construction (the same code on the same shapes in one process): a request run twice, a CPU
rerun against a CPU run of the same request, a batch of one against upstream ``CFM.sample``. Those
tests use ``np.array_equal``.

*Not* equal by construction: a request sampled in a batch against the same request alone. The batch
stacks the items, so every matrix product has another shape, and the GEMM kernel that MKL/oneDNN pick
for a shape depends on the CPU's instruction set (AVX-512, AVX2, SSE): the sums are taken in another
order and the last bits differ. Measured on the three requests of ``tests/engine/test_batching.py``
(tiny model, float32, NFE 4):

    forced instruction set               worst max abs diff   worst SNR
    (ATEN_CPU_CAPABILITY / ONEDNN_MAX_CPU_ISA / MKL_ENABLE_INSTRUCTIONS)
    avx512 / AVX512_CORE / AVX512        0                    inf (equal)
    avx2 / AVX2 / AVX2                   1.23e-7              127.6 dB
    default / SSE41 / SSE4_2             1.08e-7              127.8 dB

(measured 2026-12-02 on an AVX-512 Xeon; the same requests were bit-identical natively there and
differed on an AVX2-only EPYC, which is why this module exists.)

So a batched item must match its solo run within ``BATCH_MAX_ABS`` (80x the worst measured) and
``BATCH_MIN_SNR_DB`` (37 dB below the worst measured): room for another CPU's rounding, and still
a bound that any real batching bug (another item's noise, text or frames mixed in) breaks by far.

The numerics tests carry the ``numerics`` marker; ``tests/test_lower_isa.py`` runs them again
under a forced lower instruction set, so a test that passes on one CPU family only fails on
every machine.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from bench.metrics import max_abs_diff, snr_db  # noqa: F401 - snr_db is this module's too, for the tests

#: The largest sample difference between a batched item and its solo run (float32, full scale 1.0).
BATCH_MAX_ABS = 1e-5
#: The least signal-to-noise ratio of a batched item against its solo run.
BATCH_MIN_SNR_DB = 90.0

#: The instruction sets tests/test_lower_isa.py forces, one level below the machine's own: ATen's
#: kernels, oneDNN's and MKL's (each library reads its own variable; all three are needed).
_AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
_GENERIC = {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"}


def lower_isa_env(native: str) -> tuple[dict[str, str], str]:
    """The variables that force the instruction set below ``native`` (torch's
    ``get_cpu_capability()``), and the capability torch then reports: AVX-512 machines run AVX2
    kernels, AVX2 machines (and anything else) the generic ones."""
    return (_AVX2, "AVX2") if native.upper().startswith("AVX512") else (_GENERIC, "DEFAULT")


@dataclasses.dataclass(frozen=True)
class AudioDifference:
    """How far ``test`` is from ``reference``: the largest sample difference and the SNR in dB."""

    max_abs: float
    snr_db: float

    def __str__(self) -> str:
        return f"max abs diff {self.max_abs:.3g}, SNR {self.snr_db:.1f} dB"


def audio_difference(reference: np.ndarray, test: np.ndarray) -> AudioDifference:
    """The difference of two clips of the same length."""
    assert len(reference) == len(test), f"lengths differ: {len(reference)} vs {len(test)}"
    return AudioDifference(max_abs_diff(reference, test), snr_db(reference, test))


def assert_matches_up_to_rounding(test: np.ndarray, reference: np.ndarray, label: str = "") -> AudioDifference:
    """Assert ``test`` equals ``reference`` up to float rounding (``BATCH_MAX_ABS``, ``BATCH_MIN_SNR_DB``);
    returns the difference measured."""
    difference = audio_difference(reference, test)
    assert difference.max_abs <= BATCH_MAX_ABS and difference.snr_db >= BATCH_MIN_SNR_DB, (
        f"{label}: {difference}; allowed max abs {BATCH_MAX_ABS:g}, SNR >= {BATCH_MIN_SNR_DB:g} dB")
    return difference
