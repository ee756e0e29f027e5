"""Everything measured on a GPU, in one prepared run (budget: 8 minutes on an H100/H200).

    # on the GPU machine (see README, "GPU measurements"):
    source .whl/prelude.sh && python3 bench/gpu.py --out "$OUT"
    # dry run of every code path here, on the CPU with the tiny model:
    .venv/bin/python bench/gpu.py --device cpu --tiny --quick

Sections (each one prints its table and goes into gpu.json):

1. ``tests/gpu`` with pytest (the original failure reproduced and fixed, memory back to zero after
   unload from 1 and 8 threads, a real OOM and a load while the GPU is full served from the CPU,
   bfloat16, batching vs solo);
2. engine vs upstream ``infer_batch_process`` (fed with soundfile: no torchaudio.load there) on the
   same model objects, NFE 16 and 32, float16 and bfloat16, interleaved: time ratio, RTF, max abs
   difference (bit-identical expected in float16; upstream fails in bfloat16);
3. reload: from the pinned host copy vs from disk vs the old service's plain ``.to()`` round trip;
4. memory after unload (allocator and the driver's view) after requests from 8 threads;
5. time to first audio of a 6-chunk text, streaming;
6. the DiT's FLOP rate against the chip's measured fp16 GEMM peak;
7. batching: 1, 2, 4 and 8 clients, one request at a time vs ``F5_MAX_BATCH=8`` (bench/batching.py).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (GEN_TEXT, LONG_TEXT, REF_TEXT, REF_WAV, SIX_CHUNK_TEXT, engine_reference_file,  # noqa: E402
                    log, machine_summary, median, transformer_flops, write_full_model_dir, write_tiny_model_dir)
from metrics import max_abs_diff  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def one_chunk_text() -> str:
    """The longest start of LONG_TEXT that the engine keeps in one chunk with the f5_tts clip
    (~12 s of audio): what upstream is given as its single batch too."""
    from engine.audio_input import read_reference
    from engine.text_input import chunk_text, reference_for_model

    clip = read_reference(REF_WAV, 12.0)
    return chunk_text(LONG_TEXT, reference_for_model(REF_TEXT)[0], clip.seconds, 1.0)[0]


class Report:
    """Collects each section's figures; prints as it goes; writes gpu.json at the end."""

    def __init__(self, out: Path | None):
        self.out = out
        self.data: dict = {"machine": machine_summary(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}

    def section(self, name: str, figures: dict) -> None:
        self.data[name] = figures
        print(f"\n## {name}\n" + "\n".join(f"  {k}: {v}" for k, v in figures.items()), flush=True)

    def write(self) -> None:
        if self.out is not None:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "gpu.json").write_text(json.dumps(self.data, indent=2, default=str), encoding="utf-8")


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_gpu_tests(device: str, report: Report) -> None:
    env_device = {"F5_GPU_TESTS_DEVICE": device}
    done = subprocess.run([sys.executable, "-m", "pytest", "tests/gpu", "-q", "-s", "-p", "no:cacheprovider"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env={**__import__("os").environ,
                                                                                     **env_device})
    tail = done.stdout.strip().splitlines()[-40:]
    print("\n".join(tail))
    report.section("tests/gpu", {"exit_code": done.returncode, "summary": tail[-1] if tail else done.stderr[-500:],
                                 "printed": [line for line in done.stdout.splitlines()
                                             if any(w in line for w in ("SNR", "MiB", "ms vs"))]})


def engine_vs_upstream(model_dir: Path, device: str, steps: list[int], dtypes: list[str], rounds: int,
                       ref_file: str, report: Report) -> None:
    import soundfile as sf
    import torch
    from f5_tts.infer.utils_infer import infer_batch_process

    from engine.config import EngineConfig
    from engine.engine import Engine

    data, sr = sf.read(ref_file, dtype="float32", always_2d=True)
    ref_tensor = torch.from_numpy(data.T.copy())
    text = one_chunk_text()
    figures = {}
    for dtype in dtypes:
        engine = Engine(EngineConfig(model_dir=model_dir, device=device, dtype=dtype, idle_unload_s=-1,
                                     max_batch=1), start_reaper=False)
        engine.load()
        view = engine.inspect()
        for nfe in steps:
            def run_engine():
                result = engine.synthesize(ref_audio=REF_WAV, ref_text=REF_TEXT, gen_text=text,
                                           nfe_step=nfe, seed=7)
                sync(view.device)
                return result.audio

            def run_upstream():
                torch.manual_seed(7)
                wave, _, _ = next(infer_batch_process((ref_tensor, sr), REF_TEXT, [text],
                                                      view.model, view.vocoder, nfe_step=nfe, device=view.device,
                                                      progress=None))
                sync(view.device)
                return wave

            key = f"{dtype} NFE {nfe}"
            try:
                a, b = run_engine(), run_upstream()
            except Exception as exc:
                figures[key] = f"upstream fails: {type(exc).__name__}: {str(exc)[:120]}"
                a = run_engine()
                times = []
                for _ in range(rounds):
                    t0 = time.perf_counter()
                    run_engine()
                    times.append(time.perf_counter() - t0)
                figures[key] += f"; engine {median(times):.3f} s, RTF {median(times) / (len(a) / 24000):.4f}"
                continue
            ratio, te, tu = [], [], []
            for r in range(rounds):
                order = (run_engine, run_upstream) if r % 2 == 0 else (run_upstream, run_engine)
                spent = {}
                for fn in order:
                    t0 = time.perf_counter()
                    fn()
                    spent[fn] = time.perf_counter() - t0
                te.append(spent[run_engine])
                tu.append(spent[run_upstream])
                ratio.append(spent[run_engine] / spent[run_upstream])
            seconds = len(a) / 24000
            figures[key] = (f"engine {median(te):.3f} s vs upstream {median(tu):.3f} s: ratio {median(ratio):.3f}; "
                            f"RTF {median(te) / seconds:.4f} for {seconds:.1f} s of audio; "
                            f"max abs diff {max_abs_diff(a, b):.3g}")
        engine.close()
    report.section("engine vs upstream", figures)


def reload_times(model_dir: Path, device: str, rounds: int, report: Report) -> None:
    from engine.config import EngineConfig
    from engine.engine import Engine

    host = Engine(EngineConfig(model_dir=model_dir, device=device, idle_unload_s=-1), start_reaper=False)
    disk = Engine(EngineConfig(model_dir=model_dir, device=device, idle_unload_s=-1, keep_host_copy=False),
                  start_reaper=False)
    for engine in (host, disk):
        engine.load()
        engine.unload()
    times = {"host copy": [], "disk": [], "plain .to()": []}
    dev = host.device
    for _ in range(rounds):
        for name, engine in (("host copy", host), ("disk", disk)):
            t0 = time.perf_counter()
            engine.load()
            sync(dev)
            times[name].append(time.perf_counter() - t0)
            engine.unload()
        host.load()
        model = host.inspect().model
        t0 = time.perf_counter()
        model.to("cpu")
        model.to(dev)
        sync(dev)
        times["plain .to()"].append(time.perf_counter() - t0)
        host.unload()
        host.load()  # the engine's own placement again (the plain .to() may have left tensors behind)
        host.unload()
    report.section("reload", {name: f"{median(values) * 1e3:.1f} ms" for name, values in times.items()} | {
        "host copy / disk": f"{median(times['host copy']) / median(times['disk']):.3f}"})
    host.close()
    disk.close()


def memory_after_unload(model_dir: Path, device: str, report: Report) -> None:
    from engine.config import EngineConfig
    from engine.engine import Engine

    engine = Engine(EngineConfig(model_dir=model_dir, device=device, idle_unload_s=-1, max_batch=1),
                    start_reaper=False)
    before = engine.status().memory
    workers = [threading.Thread(target=engine.synthesize, kwargs=dict(
        ref_audio=REF_WAV, ref_text=REF_TEXT, gen_text=GEN_TEXT, nfe_step=8, seed=i)) for i in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    loaded = engine.status().memory
    engine.unload()
    after = engine.status().memory
    report.section("memory after unload (8 request threads)", {"before load": before, "loaded": loaded,
                                                               "after unload": after})
    engine.close()


def time_to_first_audio(model_dir: Path, device: str, nfe: int, report: Report) -> None:
    from engine.config import EngineConfig
    from engine.engine import Engine

    engine = Engine(EngineConfig(model_dir=model_dir, device=device, idle_unload_s=-1), start_reaper=False)
    engine.load()
    engine.synthesize(ref_audio=REF_WAV, ref_text=REF_TEXT, gen_text=GEN_TEXT, nfe_step=nfe, seed=1)  # warm
    t0 = time.perf_counter()
    arrivals, chunks = [], 0
    for chunk in engine.synthesize_stream(ref_audio=REF_WAV, ref_text=REF_TEXT, gen_text=SIX_CHUNK_TEXT,
                                          nfe_step=nfe, seed=1):
        arrivals.append(time.perf_counter() - t0)
        chunks = chunk.total
        if chunk.result is not None:
            seconds = chunk.result.duration_s
    report.section(f"time to first audio (6-chunk text, NFE {nfe})", {
        "first audio": f"{arrivals[0]:.3f} s", "whole": f"{arrivals[-1]:.3f} s for {seconds:.1f} s of audio",
        "first/whole": f"{arrivals[0] / arrivals[-1]:.3f}", "chunks": chunks})
    engine.close()


def dit_flop_rate(model_dir: Path, device: str, arch: dict, report: Report) -> None:
    import torch

    from engine.config import EngineConfig
    from engine.engine import Engine

    engine = Engine(EngineConfig(model_dir=model_dir, device=device, idle_unload_s=-1), start_reaper=False)
    engine.load()
    view = engine.inspect()
    frames = 1300
    dit = view.model.transformer
    x = torch.randn(1, frames, 100, device=view.device, dtype=view.dtype)
    text = torch.zeros(1, frames // 3, dtype=torch.long, device=view.device)
    with torch.inference_mode():
        for _ in range(3):
            dit(x=x, cond=x, text=text, time=torch.zeros(1, device=view.device, dtype=view.dtype), cfg_infer=True)
        sync(view.device)
        t0 = time.perf_counter()
        for _ in range(10):
            dit(x=x, cond=x, text=text, time=torch.zeros(1, device=view.device, dtype=view.dtype), cfg_infer=True)
        sync(view.device)
        per_forward = (time.perf_counter() - t0) / 10
        n = 8192 if view.device.type == "cuda" else 1024
        a = torch.randn(n, n, device=view.device, dtype=view.dtype)
        torch.mm(a, a)
        sync(view.device)
        t0 = time.perf_counter()
        for _ in range(5):
            torch.mm(a, a)
        sync(view.device)
        gemm = 2 * n ** 3 / ((time.perf_counter() - t0) / 5)
    flops = transformer_flops(arch, frames)
    report.section("DiT FLOP rate", {
        "one forward (1300 frames, CFG)": f"{flops / 1e9:.0f} GFLOP in {per_forward * 1e3:.1f} ms",
        "DiT rate": f"{flops / per_forward / 1e12:.3g} TFLOP/s",
        f"{view.dtype} GEMM rate ({n}^3)": f"{gemm / 1e12:.3g} TFLOP/s",
        "DiT / GEMM": f"{flops / per_forward / gemm:.3f}"})
    engine.close()


def batching(model_dir: Path, device: str, nfe: int, clients: str, report: Report) -> None:
    done = subprocess.run([sys.executable, "bench/batching.py", "--device", device, "--model-dir", str(model_dir),
                           "--nfe", str(nfe), "--clients", clients, "--rounds", "2", "--requests", "2"],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    lines = done.stdout.strip().splitlines()
    print("\n".join(lines))
    report.section("batching", {"exit_code": done.returncode, "table": lines[-(len(clients.split(",")) * 2 + 5):]
                                if done.returncode == 0 else done.stderr[-800:]})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="the tiny model (dry run)")
    parser.add_argument("--quick", action="store_true", help="fewer steps and rounds (dry run)")
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts", help="where gpu.json goes")
    parser.add_argument("--skip", default="", help="comma-separated sections to skip (tests,upstream,reload,"
                                                   "memory,ttfa,flops,batching)")
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    steps, rounds = ([4, 8], 1) if args.quick else ([16, 32], 3)
    dtypes = ["float32", "bfloat16"] if args.device == "cpu" else ["float16", "bfloat16"]
    report = Report(args.out)
    print(f"machine: {report.data['machine']}", flush=True)
    started = time.perf_counter()
    from engine.model_source import F5TTS_V1_BASE_ARCH
    from engine.smoke_model import TINY_ARCH

    with tempfile.TemporaryDirectory(prefix="f5gpu-") as tmp:
        model_dir = Path(tmp) / "model"
        t0 = time.perf_counter()
        (write_tiny_model_dir if args.tiny else write_full_model_dir)(model_dir)
        log(f"model directory written in {time.perf_counter() - t0:.1f} s")
        ref_file = engine_reference_file(tmp)
        sections = [
            ("tests", lambda: run_gpu_tests(args.device, report)),
            ("upstream", lambda: engine_vs_upstream(model_dir, args.device, steps, dtypes, rounds, ref_file, report)),
            ("reload", lambda: reload_times(model_dir, args.device, 3 if args.quick else 5, report)),
            ("memory", lambda: memory_after_unload(model_dir, args.device, report)),
            ("ttfa", lambda: time_to_first_audio(model_dir, args.device, steps[-1], report)),
            ("flops", lambda: dit_flop_rate(model_dir, args.device, TINY_ARCH if args.tiny else F5TTS_V1_BASE_ARCH,
                                            report)),
            ("batching", lambda: batching(model_dir, args.device, steps[-1], "1,2" if args.quick else "1,2,4,8",
                                          report)),
        ]
        for name, run in sections:
            if name in skip:
                continue
            log(f"section {name} ({time.perf_counter() - started:.0f} s so far)")
            try:
                run()
            except Exception as exc:  # one broken section must not cost the others their GPU time
                report.section(name, {"error": f"{type(exc).__name__}: {exc}"})
            report.write()
    report.data["seconds"] = round(time.perf_counter() - started, 1)
    report.write()
    print(f"\ndone in {report.data['seconds']} s; figures in {args.out / 'gpu.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
