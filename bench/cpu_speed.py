"""CPU speed of the full-size model: upstream F5TTS.infer vs the engine's exact path vs fast mode.

    .venv/bin/python bench/cpu_speed.py [--nfe 8] [--rounds 3] [--budget-min 14]
        [--variants upstream,exact,fast] [--cfg-cutoff 0.4] [--model-dir DIR]

F5TTS_v1_Base's architecture (337M parameters) and Vocos-mel-24khz's with random weights (the real
compute), written to a temp dir (or --model-dir, reused when it has a model.yaml). One chunk,
~3.7 s of audio from f5_tts's reference clip. Variants (``--variants``, comma separated):

  upstream     f5_tts.api.F5TTS(ckpt_file=..., vocoder_local_path=..., device="cpu").infer(...)
  exact        Engine.synthesize with engine.speed.install_rope_cache (bit-identical output)
  engine_plain Engine.synthesize as it is, without the rope cache
  fast         an engine with F5_CPU_FAST_MODE=1 (the int8 shadow of the same loaded model)
  fast_cfg     fast + F5_CPU_FAST_CFG_CUTOFF=--cfg-cutoff (guidance skipped from that flow time on)

Same inputs everywhere (reference samples, text, NFE, seed). Rounds alternate the order; the
report gives medians of per-round ratios against upstream, the output deviations (max abs
difference, SNR against the engine's exact output), and the transformer's achieved FLOP rate
(FLOPs counted by torch.utils.flop_counter / time inside the DiT forward) as a fraction of the
fp32 GEMM rate measured between the rounds. Stops adding rounds (after 2) when the next would
pass --budget-min.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (GEN_TEXT, REF_TEXT, REF_WAV, ForwardTimer, engine_reference_file, gemm_rate,  # noqa: E402
                    log, machine_summary, median, quiet, transformer_flops, write_full_model_dir, write_tiny_model_dir)
from metrics import max_abs_diff, snr_db  # noqa: E402

ALL_VARIANTS = ("upstream", "exact", "engine_plain", "fast", "fast_cfg")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nfe", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--budget-min", type=float, default=14.0, help="stop adding rounds past this (min 2 rounds)")
    parser.add_argument("--variants", default="upstream,exact,fast")
    parser.add_argument("--cfg-cutoff", type=float, default=0.4, help="flow time from which fast_cfg skips CFG")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--model-dir", type=Path, default=None, help="reuse/keep the full-size model directory here")
    parser.add_argument("--tiny", action="store_true", help="the tiny smoke model instead (a quick functional check)")
    args = parser.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(ALL_VARIANTS))
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; choose from {ALL_VARIANTS}")
    started = time.perf_counter()

    import torch

    from engine import speed
    from engine.config import EngineConfig
    from engine.loader import HOP_LENGTH, LoadedModel
    from engine.model_source import F5TTS_V1_BASE_ARCH
    from engine.engine import Engine
    from engine.smoke_model import TINY_ARCH

    print(f"machine: {machine_summary()}")
    with tempfile.TemporaryDirectory(prefix="f5bench-") as tmp:
        model_dir = args.model_dir or Path(tmp) / "full"
        if args.tiny:
            model_dir = write_tiny_model_dir(Path(tmp) / "tiny")
        elif not (model_dir / "model.yaml").is_file():
            t0 = time.perf_counter()
            write_full_model_dir(model_dir)
            log(f"wrote the full-size random model to {model_dir} in {time.perf_counter() - t0:.1f} s")
        ref_file = engine_reference_file(tmp)

        engine = Engine(EngineConfig(model_dir=model_dir, device="cpu", idle_unload_s=-1), start_reaper=False)
        t0 = time.perf_counter()
        engine.load()
        log(f"engine loaded in {time.perf_counter() - t0:.1f} s")
        model = engine.inspect().model  # the engine's (host master) model object

        upstream = None
        if "upstream" in variants:
            from f5_tts.api import F5TTS

            t0 = time.perf_counter()
            with quiet():
                if args.tiny:  # F5TTS() reads the architecture from its own config: build the tiny one by hand
                    from f5_tts.infer.utils_infer import load_model, load_vocoder
                    from f5_tts.model import DiT

                    upstream = F5TTS.__new__(F5TTS)
                    upstream.mel_spec_type, upstream.target_sample_rate, upstream.device = "vocos", 24000, "cpu"
                    upstream.ode_method, upstream.use_ema = "euler", True
                    upstream.vocoder = load_vocoder("vocos", True, str(model_dir / "vocoder"), "cpu")
                    upstream.ema_model = load_model(DiT, TINY_ARCH, str(model_dir / "model.safetensors"),
                                                    vocab_file=str(model_dir / "vocab.txt"), device="cpu")
                else:
                    upstream = F5TTS(model="F5TTS_v1_Base", ckpt_file=str(model_dir / "model.safetensors"),
                                     vocab_file=str(model_dir / "vocab.txt"),
                                     vocoder_local_path=str(model_dir / "vocoder"), device="cpu")
            log(f"upstream F5TTS loaded in {time.perf_counter() - t0:.1f} s")

        # The fast variants are engines configured as a deployment would be (F5_CPU_FAST_MODE=1,
        # F5_CPU_FAST_CFG_CUTOFF), sharing the already loaded model through an injected loader.
        view = engine.inspect()
        shared = LoadedModel(model=view.model, vocoder=view.vocoder, vocab=view.vocab, origin=view.origin)
        fast_engines: dict[str, Engine] = {}
        shadows: dict[str, torch.nn.Module] = {}
        build_s: dict[str, float] = {}
        for name, cutoff in (("fast", None), ("fast_cfg", args.cfg_cutoff)):
            if name in variants:
                fast_engines[name] = Engine(EngineConfig(model_dir=model_dir, device="cpu", idle_unload_s=-1,
                                                         cpu_fast_mode=True, cpu_fast_cfg_cutoff=cutoff),
                                            loader=lambda: shared, start_reaper=False)
                fast_engines[name].load()
                shadows[name] = fast_engines[name].fast_mode.model_for(model, "cpu")  # built here, timed
                build_s[name] = fast_engines[name].fast_mode.build_seconds
                log(f"{name}: {fast_engines[name].fast_mode.layers} linear layers quantised to int8 "
                    f"in {build_s[name]:.1f} s")

        # frames the model sees: the engine's duration rule (= upstream's)
        samples = int(round(len(__import__("soundfile").read(ref_file)[0])))
        ref_frames = samples // HOP_LENGTH
        gen_frames = int(ref_frames / len(REF_TEXT.encode("utf-8")) * len(GEN_TEXT.encode("utf-8")))
        frames = ref_frames + gen_frames
        flops_step = transformer_flops(TINY_ARCH if args.tiny else F5TTS_V1_BASE_ARCH, frames)
        log(f"{frames} frames: {flops_step / 1e9:.1f} GFLOP per DiT forward (cond+uncond)")

        timers = {"upstream": ForwardTimer(upstream.ema_model.transformer) if upstream else None,
                  "exact": ForwardTimer(model.transformer), "engine_plain": ForwardTimer(model.transformer)}
        for name, shadow in shadows.items():
            timers[name] = ForwardTimer(shadow.transformer)

        def run_engine(rope: bool, which: Engine = engine):
            (speed.install_rope_cache if rope else speed.uninstall_rope_cache)(model)
            result = which.synthesize(ref_audio=REF_WAV, ref_text=REF_TEXT, gen_text=GEN_TEXT,
                                      nfe_step=args.nfe, seed=args.seed)
            assert result.fast_mode == (which is not engine)  # the switch really decided the path
            return result.audio

        def run_upstream():
            with quiet():
                wav, _, _ = upstream.infer(ref_file, REF_TEXT, GEN_TEXT, show_info=lambda *a, **k: None,
                                           progress=None, nfe_step=args.nfe, seed=args.seed)
            return wav

        calls = {"upstream": run_upstream, "exact": lambda: run_engine(True),
                 "engine_plain": lambda: run_engine(False),
                 "fast": lambda: run_engine(True, fast_engines.get("fast")),
                 "fast_cfg": lambda: run_engine(True, fast_engines.get("fast_cfg"))}
        wall = {v: [] for v in variants}
        dit = {v: [] for v in variants}
        outputs: dict[str, object] = {}
        gemm: list[float] = []
        rounds_done = 0
        for r in range(args.rounds):
            round_start = time.perf_counter()
            gemm.append(gemm_rate())
            order = variants[r % len(variants):] + variants[: r % len(variants)]
            if r % 2:
                order = order[::-1]
            for v in order:
                timer = timers[v]
                timer.reset()
                t0 = time.perf_counter()
                outputs[v] = calls[v]()
                wall[v].append(time.perf_counter() - t0)
                dit[v].append(timer.total)
                log(f"round {r + 1} {v}: {wall[v][-1]:.1f} s (DiT {timer.total:.1f} s in {timer.calls} forwards)")
            rounds_done += 1
            spent = time.perf_counter() - started
            per_round = time.perf_counter() - round_start
            if rounds_done >= 2 and spent + per_round > args.budget_min * 60 and r + 1 < args.rounds:
                log(f"stopping after {rounds_done} rounds: another would pass the {args.budget_min:g} min budget")
                break
        gemm.append(gemm_rate())
        for timer in timers.values():
            if timer is not None:
                timer.remove()

        audio_s = len(outputs[variants[0]]) / 24000
        g = median(gemm)
        what = "TINY smoke model" if args.tiny else "full-size F5TTS_v1_Base"
        print(f"\n{what} (random weights), NFE {args.nfe}, {audio_s:.2f} s of audio, 1 chunk, "
              f"{frames} frames, {rounds_done} rounds, {time.strftime('%Y-%m-%d %H:%M')}")
        print(f"fp32 GEMM rate (1712x1024 @ 1024x2048, median of {len(gemm)} samples between rounds): "
              f"{g / 1e9:.1f} GFLOP/s")
        print(f"DiT: {flops_step / 1e9:.1f} GFLOP per forward x {args.nfe} = "
              f"{flops_step * args.nfe / 1e12:.2f} TFLOP\n")
        print(f"{'variant':13s} {'median s':>9s} {'ratio vs upstream':>18s} {'speed-up':>9s} {'DiT s':>7s} "
              f"{'DiT GFLOP/s':>12s} {'of GEMM':>8s}")
        for v in variants:
            rate = flops_step * args.nfe / median(dit[v]) if median(dit[v]) > 0 else float("nan")
            if "upstream" in variants and v != "upstream":
                rs = [a / b for a, b in zip(wall[v], wall["upstream"])]
                ratio = f"{median(rs):.3f}"
                speedup = f"{1 / median(rs):.2f}x"
            else:
                ratio, speedup = "-", "-"
            print(f"{v:13s} {median(wall[v]):9.1f} {ratio:>18s} {speedup:>9s} {median(dit[v]):7.1f} "
                  f"{rate / 1e9:12.1f} {rate / g:8.0%}")
        print()
        base = "exact" if "exact" in outputs else ("engine_plain" if "engine_plain" in outputs else None)
        if base and "upstream" in outputs:
            print(f"{base} vs upstream: max abs diff {max_abs_diff(outputs[base], outputs['upstream']):.3g}, "
                  f"SNR {snr_db(outputs['upstream'], outputs[base]):.1f} dB")
        if "exact" in outputs and "engine_plain" in outputs:
            print(f"exact vs engine_plain: max abs diff {max_abs_diff(outputs['exact'], outputs['engine_plain']):.3g}")
        reference = base or ("upstream" if "upstream" in outputs else None)  # the fp32 output to compare with
        for v in ("fast", "fast_cfg"):
            if v in outputs and reference:
                print(f"{v} vs {reference} (fp32): SNR {snr_db(outputs[reference], outputs[v]):.1f} dB, "
                      f"max abs diff {max_abs_diff(outputs[reference], outputs[v]):.3g} "
                      f"(peak |fp32| {float(abs(outputs[reference]).max()):.3g}); int8 build {build_s[v]:.1f} s")
        if "fast_cfg" in variants:
            print(f"fast_cfg: CFG skipped from flow time {args.cfg_cutoff:g} on")
        if {"fast", "fast_cfg"} & set(variants):
            print("DiT GFLOP/s of fast variants = fp32 FLOPs of the full computation / time: an effective rate "
                  "(int8 products and skipped CFG halves do less work)")
        print(f"\ntotal bench time {(time.perf_counter() - started) / 60:.1f} min")
        engine.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
