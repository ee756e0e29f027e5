"""Engine overhead: ``Engine.synthesize`` vs the bare ``f5_tts.infer.utils_infer.infer_process``.

    .venv/bin/python bench/engine_overhead.py [--nfe 8] [--rounds 30] [--reload-rounds 10]

One process, the tiny smoke model (written to a temp dir), CPU. Both paths get the same model and
vocoder objects (the engine's, loaded by engine.loader), the same reference samples (the engine's
trimmed clip, handed to upstream as a float WAV), the same reference and generated text, NFE and
seed (``torch.manual_seed`` before each upstream call; the engine seeds itself). Calls alternate,
order flipped every round; the result is the median of the per-round ratios engine / upstream
(target <= 1.03), plus the max abs difference of the audio.

Second part: reload from the host copy (``Engine.unload()`` + ``load()``) vs a fresh engine
loading the same directory from disk, interleaved, median ratio.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (GEN_TEXT, REF_TEXT, REF_WAV, engine_reference_file, interleave,  # noqa: E402
                    machine_summary, max_abs_diff, median, quiet, ratios, write_tiny_model_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nfe", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=30,
                        help="synthesis rounds (each: one engine + one upstream call)")
    parser.add_argument("--reload-rounds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args(argv)

    import torch

    from engine.config import EngineConfig
    from engine.engine import Engine
    from f5_tts.infer.utils_infer import infer_process

    print(f"machine: {machine_summary()}")
    with tempfile.TemporaryDirectory(prefix="f5bench-") as tmp:
        model_dir = write_tiny_model_dir(Path(tmp) / "tiny")
        ref_file = engine_reference_file(tmp)
        config = EngineConfig(model_dir=model_dir, device="cpu", idle_unload_s=-1)
        engine = Engine(config, start_reaper=False)
        engine.load()
        model, vocoder = engine.inspect().model, engine.inspect().vocoder  # the loader's objects

        def run_engine():
            return engine.synthesize(ref_audio=REF_WAV, ref_text=REF_TEXT, gen_text=GEN_TEXT,
                                     nfe_step=args.nfe, seed=args.seed).audio

        def run_upstream():
            torch.manual_seed(args.seed)
            with quiet():
                wave, _, _ = infer_process(ref_file, REF_TEXT, GEN_TEXT, model, vocoder, mel_spec_type="vocos",
                                           show_info=lambda *a, **k: None, progress=None, nfe_step=args.nfe,
                                           device="cpu")
            return wave

        outputs: dict[str, object] = {}
        a, b = run_engine(), run_upstream()  # warm-up (first-call allocations, jieba, torchaudio)
        diff = max_abs_diff(a, b)
        timings = interleave({"engine": run_engine, "upstream": run_upstream}, args.rounds,
                             on_result=lambda name, r, out: outputs.__setitem__(name, out))
        r = ratios(timings["engine"], timings["upstream"])
        print(f"\nsynthesis, tiny model, NFE {args.nfe}, {len(a) / 24000:.2f} s audio, {args.rounds} rounds")
        print(f"  engine   median {timings['engine'].median * 1e3:8.1f} ms")
        print(f"  upstream median {timings['upstream'].median * 1e3:8.1f} ms  (infer_process, same model objects)")
        print(f"  median ratio engine/upstream: {median(r):.3f}  (target <= 1.03; "
              f"quartiles {sorted(r)[len(r) // 4]:.3f}..{sorted(r)[3 * len(r) // 4]:.3f})")
        print(f"  max abs difference of the audio: {diff:.3g} (len {len(a)} vs {len(b)})")

        # ---- reload from the host copy vs a fresh load from disk
        def reload_host():
            engine.unload()
            engine.load()

        def load_disk():
            fresh = Engine(config, start_reaper=False)
            fresh.load()
            fresh.close()

        reload_host(), load_disk()  # warm-up
        lt = interleave({"host_copy": reload_host, "disk": load_disk}, args.reload_rounds)
        lr = ratios(lt["host_copy"], lt["disk"])
        print(f"\nreload, tiny model, {args.reload_rounds} rounds")
        print(f"  unload()+load() from the host copy median {lt['host_copy'].median * 1e3:8.2f} ms")
        print(f"  fresh engine load from the directory median {lt['disk'].median * 1e3:8.2f} ms")
        print(f"  median ratio host-copy reload / disk load: {median(lr):.3f}")
        engine.close()
    print(f"\ndone {time.strftime('%Y-%m-%d %H:%M')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
