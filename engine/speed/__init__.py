"""Speed: CPU threads, the exact rotary cache, and the opt-in int8 CPU fast mode.

Split by subject:

* :mod:`engine.speed.threads` -- torch threads = the CPUs this process may really use; OpenMP
  that sleeps instead of spinning.
* :mod:`engine.speed.rope` and :mod:`engine.speed.attention` -- **exact** (bit-identical): the
  rotary tables once per DiT forward, the attention processors, the shared SDPA tail, and the one
  place processors are installed.
* :mod:`engine.speed.int8`, :mod:`engine.speed.variants` and :mod:`engine.speed.fast_mode` --
  **opt-in, not exact**: the int8 shadow of the model, the registered forward variants it swaps
  in, and when the engine uses it.

Everything here is measured by ``bench/`` (see bench/README.md for the figures). The streaming
first-chunk split lives with the rest of the text handling, in :mod:`engine.text_input`.
"""

from engine.speed.attention import RopeCachingAttnProcessor, install_rope_cache, uninstall_rope_cache
from engine.speed.fast_mode import FAST_MODE_LABEL, FAST_MODE_NOTICE, CpuFastMode
from engine.speed.int8 import DEFAULT_INT8_PATTERN, Int8DynamicLinear, build_int8_model, int8_kernels_available, \
    shadow_copy
from engine.speed.rope import apply_rope, clear_rope_cache
from engine.speed.threads import configure_cpu_threads, effective_cpu_count, omp_wait_policy

__all__ = [
    "CpuFastMode", "DEFAULT_INT8_PATTERN", "FAST_MODE_LABEL", "FAST_MODE_NOTICE", "Int8DynamicLinear",
    "RopeCachingAttnProcessor", "apply_rope", "build_int8_model", "clear_rope_cache", "configure_cpu_threads",
    "effective_cpu_count", "install_rope_cache", "int8_kernels_available", "omp_wait_policy", "shadow_copy",
    "uninstall_rope_cache",
]
