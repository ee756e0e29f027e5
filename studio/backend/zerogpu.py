"""One whole synthesis on a backend, the ZeroGPU way where the app runs on a ZeroGPU Space.

On a ZeroGPU Space the platform lends the GPU per call: whole syntheses run in ``spaces.GPU``
(with a CPU rerun if that fails, see ``engine.zerogpu.with_zerogpu``) and the UI does not stream.
Everywhere else :func:`whole_synthesis` is ``backend.synthesize``. The clone tab, the dialogue and
dubbing jobs and the REST API all take their whole syntheses from here. The wrapper is made when
the app is assembled (at import on a Space, as ``spaces.GPU`` wants).
"""

from __future__ import annotations

from typing import Callable

from engine import zerogpu
from engine.request import SynthesisRequest
from engine.results import SynthesisResult
from studio.backend.contract import Backend

ON_ZEROGPU = zerogpu.detect()

WholeSynthesis = Callable[[SynthesisRequest], SynthesisResult]


def whole_synthesis(backend: Backend) -> WholeSynthesis:
    """``backend.synthesize``, inside ``spaces.GPU`` with a CPU rerun on a ZeroGPU Space."""

    def on_gpu(request: SynthesisRequest) -> SynthesisResult:
        return backend.synthesize(request)

    def on_cpu(request: SynthesisRequest, fallback_reason: str | None = None) -> SynthesisResult:
        """ZeroGPU's fallback when the GPU call itself fails: the same request on the CPU."""
        return backend.synthesize(request.replace(fallback_reason=fallback_reason))

    def gpu_seconds(request: SynthesisRequest) -> int:
        return zerogpu.estimate_gpu_seconds(request.gen_text, request.nfe_step or backend.settings.default_nfe_step)

    return zerogpu.with_zerogpu(on_gpu, on_cpu, gpu_seconds)


def zerogpu_synthesis(backend: Backend) -> WholeSynthesis | None:
    """What multi-request jobs (dialogue, dubbing) call per line on ZeroGPU instead of streaming;
    None elsewhere."""
    return whole_synthesis(backend) if ON_ZEROGPU else None
