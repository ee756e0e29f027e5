"""Batching: N concurrent clients through the engine, one request at a time vs sampled together.

    .venv/bin/python bench/batching.py [--clients 1,2,4,8] [--rounds 2] [--nfe 8] [--full] [--device cpu]
                                       [--batch 8] [--requests 2]

Each client is a thread that sends ``--requests`` requests one after another (different texts of
one to three chunks, a seed each). Two engines on the same model objects: ``F5_MAX_BATCH=1`` (one
request at a time, today's behaviour off CUDA) and ``F5_MAX_BATCH=--batch`` (default 8, the CUDA
default). For each client count the two run interleaved, order flipped every round; the report
gives requests per minute, p50 and p95 latency of each, and the median of the per-round
throughput ratios (batched / one at a time), then how far each text's audio batched is from its
audio alone (max abs difference and SNR: equal up to float rounding, not bit for bit, since a batch
multiplies matrices of other shapes; see tests/numerics.py). ``--full`` uses the full-size F5TTS_v1_Base
architecture with random weights (slow on a CPU: use a small --nfe and --requests 1). ``--device
cuda`` runs on a GPU (see bench/gpu.py, which calls this with the GPU settings).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REF_TEXT, REF_WAV, log, machine_summary, median, write_full_model_dir, write_tiny_model_dir  # noqa: E402
from metrics import max_abs_diff, snr_db  # noqa: E402

#: Requests of one, two and three chunks with the f5_tts clip (different lengths on purpose).
TEXTS = [
    "I don't really care what you call me.",
    "The river remembers every stone it has carried to the sea, and every season it has seen go by. "
    "Mountains rise slowly, over millions of years, and wear away grain by grain under rain and wind.",
    "Forests breathe in the morning light. Birds return each spring to the same branches. "
    "The ocean keeps its own time, rising and falling with the moon, patient beyond all human measure. "
    "Deserts hold the memory of ancient seas, written in the sand and in the bones of creatures long gone. "
    "Listen closely and you will hear it: the slow heartbeat of a planet that was here long before you.",
]


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def run_clients(engine, clients: int, requests: int, nfe: int) -> tuple[float, list[float]]:
    """``clients`` threads x ``requests`` each; returns (wall seconds, per-request latencies)."""
    latencies: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def client(c: int) -> None:
        for r in range(requests):
            t0 = time.perf_counter()
            try:
                engine.synthesize(ref_audio=REF_WAV, ref_text=REF_TEXT, gen_text=TEXTS[(c + r) % len(TEXTS)],
                                  nfe_step=nfe, seed=1000 * c + r)
            except BaseException as exc:  # reported after the run
                errors.append(exc)
            with lock:
                latencies.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    t0 = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"{len(errors)} request(s) failed: {errors[0]!r}")
    return time.perf_counter() - t0, latencies


def batched_vs_alone(one, batched, nfe: int) -> str:
    """Every text alone on ``one``, then all together on ``batched`` (same seeds): the worst max abs
    difference and the worst SNR of a batched clip against its clip alone."""
    kwargs = [dict(ref_audio=REF_WAV, ref_text=REF_TEXT, gen_text=text, nfe_step=nfe, seed=7 + i)
              for i, text in enumerate(TEXTS)]
    alone = [one.synthesize(**kw).audio for kw in kwargs]
    together: list = [None] * len(kwargs)
    threads = [threading.Thread(target=lambda i=i: together.__setitem__(i, batched.synthesize(**kwargs[i]).audio))
               for i in range(len(kwargs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    worst_abs = max(max_abs_diff(a, b) for a, b in zip(alone, together))
    worst_snr = min(snr_db(a, b) for a, b in zip(alone, together))
    return f"batched vs alone ({len(kwargs)} texts): worst max abs diff {worst_abs:.3g}, worst SNR {worst_snr:.1f} dB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,2,4,8", help="comma-separated client counts")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--requests", type=int, default=2, help="requests per client per round")
    parser.add_argument("--nfe", type=int, default=8)
    parser.add_argument("--batch", type=int, default=8, help="F5_MAX_BATCH of the batched engine")
    parser.add_argument("--full", action="store_true", help="full-size architecture, random weights")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--model-dir", type=Path, default=None, help="reuse a model directory")
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.clients.split(",")]

    from engine.config import EngineConfig
    from engine.loader import LoadedModel
    from engine.engine import Engine

    print(f"machine: {machine_summary()}")
    with tempfile.TemporaryDirectory(prefix="f5bench-") as tmp:
        model_dir = args.model_dir or Path(tmp) / ("full" if args.full else "tiny")
        if not (model_dir / "model.yaml").is_file():
            (write_full_model_dir if args.full else write_tiny_model_dir)(model_dir)

        def config(max_batch: int, keep_host_copy: bool = True) -> EngineConfig:
            return EngineConfig(model_dir=model_dir, device=args.device, dtype=args.dtype, idle_unload_s=-1,
                                max_queue=256, max_batch=max_batch, keep_host_copy=keep_host_copy)

        one = Engine(config(1), start_reaper=False)
        one.load()
        view = one.inspect()
        shared = LoadedModel(model=view.model, vocoder=view.vocoder, vocab=view.vocab, origin=view.origin)
        # the same model objects (and host copy) for both: only the scheduling differs
        batched = Engine(config(args.batch, keep_host_copy=False), loader=lambda: shared, start_reaper=False)
        batched.load()
        engines = {"one at a time": one, f"batched (max {args.batch})": batched}
        run_clients(one, 1, 1, args.nfe)  # warm-up: first-call allocations, jieba
        run_clients(batched, 2, 1, args.nfe)
        label = f"{'full-size' if args.full else 'tiny'} model, NFE {args.nfe}, {args.device}"
        print(f"\n{label}; {args.rounds} rounds; {args.requests} request(s) per client; "
              f"{time.strftime('%Y-%m-%d %H:%M')}")
        print(f"{'clients':>7}  {'variant':<20} {'req/min':>8} {'p50 s':>8} {'p95 s':>8}   batched/one (per round)")
        for clients in counts:
            walls: dict[str, list[float]] = {name: [] for name in engines}
            lats: dict[str, list[float]] = {name: [] for name in engines}
            for r in range(args.rounds):
                order = list(engines) if r % 2 == 0 else list(engines)[::-1]
                for name in order:
                    log(f"{clients} client(s), round {r + 1}: {name}")
                    wall, latencies = run_clients(engines[name], clients, args.requests, args.nfe)
                    walls[name].append(wall)
                    lats[name].extend(latencies)
            names = list(engines)
            per_round = [a / b for a, b in zip(walls[names[0]], walls[names[1]])]  # throughput ratio
            for name in names:
                rpm = 60 * clients * args.requests / median(walls[name])
                print(f"{clients:>7}  {name:<20} {rpm:8.1f} {percentile(lats[name], 50):8.2f} "
                      f"{percentile(lats[name], 95):8.2f}" + (
                          f"   {median(per_round):.2f}x ({', '.join(f'{x:.2f}' for x in per_round)})"
                          if name == names[1] else ""))
        status = batched.status()
        print(f"\nbatched engine: {status.batched_passes} batched passes, peak batch {status.peak_batch}")
        print(batched_vs_alone(one, batched, args.nfe))
        one.close()
        batched.close()
    print(f"done {time.strftime('%Y-%m-%d %H:%M')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
