"""REST overhead: ``POST /v1/audio/speech`` vs ``Engine.synthesize`` in-process, and encode time per format.

    .venv/bin/python bench/rest_overhead.py [--nfe 8] [--rounds 30] [--encode-repeats 20]

One process, the tiny smoke model (written to a temp dir), CPU. The app's server (``studio.rest.server``:
the REST API with the page mounted, as ``python app.py`` serves it) runs under uvicorn in a thread of
this process, on a backend wrapping THE SAME engine the in-process calls use. Each round sends one
request over HTTP (httpx, a kept-alive connection; the whole response read) and makes the same call
in-process: same bundled voice and transcript, text, NFE and seed. Calls alternate, order flipped every
round; the result is the median of the per-round ratios REST / in-process (target <= 1.05 for ``wav``),
in wall time and in this process's CPU time (all threads: what the API adds, less disturbed by other
tenants of a shared machine), and the REST ``wav`` is checked to be the engine's audio sample for sample.

Second part: encode time per ``response_format`` (``studio.rest.encoding``, PyAV) for 10 s of real
speech (the bundled voice, repeated), whole and in the 4 chunks a stream would send, median of
``--encode-repeats``.
"""

from __future__ import annotations

import argparse
import io
import socket
import sys
import os
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import interleave, log, machine_summary, median, ratios, write_tiny_model_dir  # noqa: E402

GEN_TEXT = "I don't really care what you call me."  # one chunk: streaming does not split it


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(app, port: int):
    """uvicorn serving ``app`` on 127.0.0.1:``port`` in a daemon thread; returns the server."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, name="bench-uvicorn", daemon=True).start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    return server


def cpu_timed(fn, into: list[float]):
    """``fn`` that also appends the process CPU time it took (every thread: the server's, the engine's) to
    ``into``; CPU time is what the API adds, and other tenants of a shared machine disturb it less than
    wall time."""

    def run():
        started = time.process_time()
        out = fn()
        into.append(time.process_time() - started)
        return out

    return run


def encode_times(audio, rate: int, repeats: int, chunks: int = 4) -> dict[str, tuple[float, float, int]]:
    """Per format: (median ms whole, median ms in ``chunks`` pieces, bytes)."""
    import numpy as np

    from studio.rest.encoding import FORMATS, StreamEncoder, encode_whole

    pieces = np.array_split(audio, chunks)
    results = {}
    for name, fmt in FORMATS.items():
        encode_whole(audio, fmt, rate)  # warm-up (codec set-up, first allocations)
        whole, chunked = [], []
        size = 0
        for _ in range(repeats):
            t0 = time.perf_counter()
            size = len(encode_whole(audio, fmt, rate))
            whole.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            encoder = StreamEncoder(fmt, rate)
            for piece in pieces:
                encoder.encode(piece)
            encoder.finish()
            chunked.append(time.perf_counter() - t0)
        results[name] = (median(whole) * 1e3, median(chunked) * 1e3, size)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nfe", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=30, help="rounds (each: one REST + one in-process call)")
    parser.add_argument("--format", default="wav", help="response_format of the REST calls")
    parser.add_argument("--encode-repeats", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args(argv)

    import httpx
    import numpy as np
    import soundfile as sf

    from engine.config import EngineConfig
    from engine.engine import Engine
    from studio.ui import page
    from studio.backend import LocalBackend
    from studio.rest import server as rest_server
    from studio.audio_files import to_int16
    from studio.settings import studio_settings
    from studio.voices.bundled import load_voices
    from studio.voices.library import make_library

    print(f"machine: {machine_summary()}")
    voice = load_voices()[0]
    with tempfile.TemporaryDirectory(prefix="f5bench-") as tmp:
        os.environ["F5_DATA_DIR"] = str(Path(tmp) / "data")  # the voice library: never the checkout's ./data
        engine = Engine(EngineConfig(model_dir=write_tiny_model_dir(Path(tmp) / "tiny"), device="cpu",
                                     idle_unload_s=-1), start_reaper=False)
        backend = LocalBackend(engine)
        library = make_library(studio_settings(), backend.settings.max_ref_seconds)
        app = rest_server.create_app(backend, page.build_demo(backend, studio_settings(), library),
                                     page.launch_options(backend, 20), library)
        port = free_port()
        server = start_server(app, port)
        engine.load()
        body = {"model": "f5-tts", "input": GEN_TEXT, "voice": voice.name, "response_format": args.format,
                "nfe_step": args.nfe, "seed": args.seed}
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)

        def run_rest() -> bytes:
            response = http.post("/v1/audio/speech", json=body)
            response.raise_for_status()
            return response.content

        def run_engine():
            return engine.synthesize(ref_audio=str(voice.path), ref_text=voice.ref_text, gen_text=GEN_TEXT,
                                     nfe_step=args.nfe, seed=args.seed).audio

        log("warm-up")
        rest_bytes, audio = run_rest(), run_engine()  # first-call allocations, codec set-up
        same = None
        if args.format == "wav":
            samples, _ = sf.read(io.BytesIO(rest_bytes), dtype="int16")
            same = bool(np.array_equal(samples, to_int16(audio)))
        cpu: dict[str, list[float]] = {"rest": [], "engine": []}
        timings = interleave({"rest": cpu_timed(run_rest, cpu["rest"]), "engine": cpu_timed(run_engine, cpu["engine"])},
                             args.rounds)
        r = ratios(timings["rest"], timings["engine"])
        cpu_r = [a / b for a, b in zip(cpu["rest"], cpu["engine"])]
        print(f"\nspeech, tiny model, NFE {args.nfe}, {len(audio) / 24000:.2f} s audio, {args.format}, {args.rounds} rounds")
        print(f"  REST (HTTP, {args.format}) median {timings['rest'].median * 1e3:8.1f} ms")
        print(f"  Engine.synthesize    median {timings['engine'].median * 1e3:8.1f} ms  (same engine, in-process)")
        print(f"  median ratio REST/engine: {median(r):.3f}  (target <= 1.05 for wav; "
              f"quartiles {sorted(r)[len(r) // 4]:.3f}..{sorted(r)[3 * len(r) // 4]:.3f})")
        differences = [a - b for a, b in zip(timings["rest"].seconds, timings["engine"].seconds)]
        print(f"  median of per-round differences REST - engine: {median(differences) * 1e3:.1f} ms")
        print(f"  CPU time of this process (all its threads): REST median {median(cpu['rest']) * 1e3:.1f} ms, "
              f"engine {median(cpu['engine']) * 1e3:.1f} ms; median ratio {median(cpu_r):.3f} "
              f"(quartiles {sorted(cpu_r)[len(cpu_r) // 4]:.3f}..{sorted(cpu_r)[3 * len(cpu_r) // 4]:.3f})")
        if same is not None:
            print(f"  REST wav == engine audio (int16): {same}")

        speech, rate = sf.read(str(voice.path), dtype="float32")  # real speech (the tiny model makes noise)
        speech = np.tile(speech, int(np.ceil(10 * rate / len(speech))))[: 10 * rate]
        seconds = len(speech) / rate
        print(f"\nencode time per format, {seconds:.0f} s of speech (the bundled voice, repeated), "
              f"median of {args.encode_repeats}")
        print(f"  {'format':<6} {'whole ms':>9} {'4 chunks ms':>12} {'ms per s audio':>15} {'bytes':>8}")
        for name, (whole_ms, chunked_ms, size) in encode_times(speech, rate, args.encode_repeats).items():
            print(f"  {name:<6} {whole_ms:9.2f} {chunked_ms:12.2f} {whole_ms / seconds:15.2f} {size:8d}")
        http.close()
        server.should_exit = True
        engine.close()
    print(f"\ndone {time.strftime('%Y-%m-%d %H:%M')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
