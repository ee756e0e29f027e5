"""How far one clip is from another: the figures the benches print and the numerics tests bound.

Free of side effects (unlike ``bench/common.py``, which sets the benches' environment at import), so
the test suite imports it directly.
"""

from __future__ import annotations

import numpy as np


def snr_db(reference: np.ndarray, test: np.ndarray) -> float:
    """Signal-to-noise ratio of ``test`` against ``reference`` in dB (inf when identical)."""
    n = min(len(reference), len(test))
    ref = np.asarray(reference[:n], dtype=np.float64)
    err = ref - np.asarray(test[:n], dtype=np.float64)
    noise = float(np.mean(err ** 2))
    if noise == 0.0:
        return float("inf")
    return 10.0 * float(np.log10(float(np.mean(ref ** 2)) / noise))


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """The largest sample difference (nan when the lengths differ, 0 for two empty clips)."""
    if len(a) != len(b):
        return float("nan")
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)))) if len(a) else 0.0
