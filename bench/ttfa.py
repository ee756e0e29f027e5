"""Time to first audio (TTFA) vs time to the whole audio, streaming a 6-chunk text.

    .venv/bin/python bench/ttfa.py                       # tiny model, NFE 8, 5 rounds
    .venv/bin/python bench/ttfa.py --full --nfe 4        # full-size architecture (long: see below)

Streams f5_tts's reference clip + a text that f5_tts's chunking splits into 6 chunks through
``Engine.synthesize_stream`` and records when each StreamChunk arrives, for

  baseline  ``synthesize_stream(..., fast_start=False)``: f5_tts's chunks as they are
  split     ``synthesize_stream(...)`` as the app calls it: the first chunk split at its first clause
            (engine.text_input.first_chunk_split)

Tiny model: both run to the end each round (interleaved); medians of TTFA/total per run.

``--full``: one chunk of the full-size model at ~24 s of context takes minutes on 2 CPUs, so the
baseline stream is closed after its first chunk (its TTFA), and its total is *derived*: its first
chunk plus the time the split run spent on chunks 2..6 (the same texts, so the same compute).
``--complete`` runs the baseline to the end as well.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (REF_TEXT, REF_WAV, SIX_CHUNK_TEXT, log, machine_summary, median,  # noqa: E402
                    write_full_model_dir, write_tiny_model_dir)


def stream_times(engine, nfe: int, seed: int, split: bool, stop_after: int | None = None):
    """Arrival time of each chunk (seconds from the call) and the chunk texts' count."""
    times: list[float] = []
    t0 = time.perf_counter()
    stream = engine.synthesize_stream(ref_audio=REF_WAV, ref_text=REF_TEXT, gen_text=SIX_CHUNK_TEXT,
                                      nfe_step=nfe, seed=seed, fast_start=split)
    total_chunks = None
    try:
        for chunk in stream:
            times.append(time.perf_counter() - t0)
            total_chunks = chunk.total
            log(f"{'split' if split else 'baseline'}: chunk {chunk.index + 1}/{chunk.total} at {times[-1]:.1f} s "
                f"({len(chunk.audio) / chunk.sample_rate:.2f} s audio)")
            if stop_after is not None and len(times) >= stop_after:
                break
    finally:
        stream.close()
    return times, total_chunks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="full-size F5TTS_v1_Base architecture")
    parser.add_argument("--nfe", type=int, default=None, help="default 8 (tiny) or 4 (full)")
    parser.add_argument("--rounds", type=int, default=5, help="tiny model rounds")
    parser.add_argument("--complete", action="store_true", help="full: run the baseline to the end too")
    parser.add_argument("--fast", action="store_true", help="F5_CPU_FAST_MODE=1 (the int8 fast CPU mode)")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--model-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    nfe = args.nfe or (4 if args.full else 8)

    from engine.audio_input import read_reference
    from engine.config import EngineConfig
    from engine.engine import Engine
    from engine.text_input import chunk_text, first_chunk_split

    print(f"machine: {machine_summary()}")
    clip = read_reference(REF_WAV, 12.0)
    base_chunks = chunk_text(SIX_CHUNK_TEXT, REF_TEXT, clip.seconds, 1.0)
    split_chunks = first_chunk_split(base_chunks)
    print(f"text: {len(SIX_CHUNK_TEXT)} characters, {len(base_chunks)} chunks "
          f"({', '.join(str(len(c)) for c in base_chunks)} characters)")
    print(f"first chunk split: {split_chunks[0]!r} | {split_chunks[1][:40]!r}...")

    with tempfile.TemporaryDirectory(prefix="f5bench-") as tmp:
        if args.full:
            model_dir = args.model_dir or Path(tmp) / "full"
            if not (model_dir / "model.yaml").is_file():
                write_full_model_dir(model_dir)
        else:
            model_dir = write_tiny_model_dir(Path(tmp) / "tiny")
        engine = Engine(EngineConfig(model_dir=model_dir, device="cpu", idle_unload_s=-1, cpu_fast_mode=args.fast),
                        start_reaper=False)
        engine.load()

        label = f"{'full-size' if args.full else 'tiny'} model{' (fast mode)' if args.fast else ''}, NFE {nfe}"
        if not args.full:
            stream_times(engine, nfe, args.seed, split=False)  # warm-up
            runs: dict[str, list[tuple[float, float]]] = {"baseline": [], "split": []}
            for r in range(args.rounds):
                order = ("baseline", "split") if r % 2 == 0 else ("split", "baseline")
                for name in order:
                    times, _ = stream_times(engine, nfe, args.seed, split=name == "split")
                    runs[name].append((times[0], times[-1]))
            print(f"\n{label}, {args.rounds} rounds, {time.strftime('%Y-%m-%d %H:%M')}")
            for name, values in runs.items():
                ttfa = median([a for a, _ in values])
                total = median([b for _, b in values])
                frac = median([a / b for a, b in values])
                print(f"  {name:9s} TTFA {ttfa:7.3f} s  whole audio {total:7.3f} s  TTFA/total {frac:.3f}")
            extra = median([s[1] / b[1] for s, b in zip(runs["split"], runs["baseline"])])
            print(f"  whole-audio time split/baseline: {extra:.3f} (cost of the extra chunk)")
        else:
            split_times, n_split = stream_times(engine, nfe, args.seed, split=True)
            if args.complete:
                base_times, n_base = stream_times(engine, nfe, args.seed, split=False)
                base_ttfa, base_total, derived = base_times[0], base_times[-1], False
            else:
                base_times, n_base = stream_times(engine, nfe, args.seed, split=False, stop_after=1)
                base_ttfa = base_times[0]
                base_total = base_ttfa + (split_times[-1] - split_times[1])  # chunks 2..6, measured in the split run
                derived = True
            print(f"\n{label}, 1 run each, {time.strftime('%Y-%m-%d %H:%M')}")
            print(f"  baseline  TTFA {base_ttfa:7.1f} s  whole audio {base_total:7.1f} s"
                  f"{' (derived: its chunk 1 + chunks 2..6 of the split run)' if derived else ''}  "
                  f"TTFA/total {base_ttfa / base_total:.3f}  ({n_base} chunks)")
            print(f"  split     TTFA {split_times[0]:7.1f} s  whole audio {split_times[-1]:7.1f} s  "
                  f"TTFA/total {split_times[0] / split_times[-1]:.3f}  ({n_split} chunks)")
            print(f"  chunk arrival times (split run): {', '.join(f'{t:.1f}' for t in split_times)} s")
        engine.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
