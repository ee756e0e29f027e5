"""The flow-matching sampler, owned by the engine: f5_tts's ``CFM.sample`` + torchdiffeq's Euler
solver, step for step, for a batch of independent items.

Why not call ``CFM.sample``: it draws every item's noise from the global generator (so a request's
audio would depend on who it was batched with), makes the ODE time grid in the sample's dtype
(in bfloat16 the 33-point grid at NFE 32 is not strictly increasing: torchdiffeq refuses it, and
every request failed), and leaves its text cache behind on an exception. Here:

* each :class:`SampleItem` brings its own noise (:class:`~engine.noise.NoiseSource`: a per-request
  generator), so a seed gives the same audio alone or in a batch;
* in float32 and float16 the arithmetic is upstream's exactly (same grid dtype, same operations in
  the same order): a batch of one is bit-identical to ``CFM.sample``;
* in bfloat16 the time grid and the ODE state stay float32 and only the transformer runs in
  bfloat16 (its inputs cast on the way in);
* the DiT text cache is cleared in a ``finally``.

Items of a batch differ in reference, text and length: they are padded as f5_tts pads batches,
with a padding mask (the attention processors keep padded frames out, see
:mod:`engine.speed.attention`), their text embeddings are computed item by item, the time modulations at a lone
item's size, and each item's result is cut back to its own length. On the CPU in float32 an item of a batch then gets exactly
the audio it gets alone (tests/engine/test_batching.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pad_sequence

CFG_STRENGTH = 2.0
SWAY_SAMPLING_COEF = -1.0
MAX_DURATION = 65536  # CFM.sample's cap on frames

#: draw(frames, channels, device, dtype) -> noise of that shape for one item.
NoiseFn = Callable[[int, int, torch.device, torch.dtype], torch.Tensor]


@dataclasses.dataclass
class SampleItem:
    """One item of a batch: its reference audio (raw wave on the device), the text the model reads
    (reference transcript + text to speak), the total duration in mel frames, and its noise."""

    audio: torch.Tensor  # (1, samples), float32, on the device
    text: list[str]  # tokens (characters, pinyin) as f5_tts's convert_char_to_pinyin makes them
    duration: int  # mel frames: reference + generated
    noise: NoiseFn


def time_grid(steps: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """CFM.sample's grid: EPSS timesteps where defined, else uniform, then sway sampling; in
    bfloat16 it is made in float32 (bfloat16 cannot hold 33 increasing points near 1)."""
    from f5_tts.model.utils import get_epss_timesteps

    grid_dtype = torch.float32 if dtype == torch.bfloat16 else dtype
    t = get_epss_timesteps(steps, device=device, dtype=grid_dtype)
    return t + SWAY_SAMPLING_COEF * (torch.cos(torch.pi / 2 * t) - 1 + t)


def _cache_text_item_by_item(transformer: nn.Module, text: torch.Tensor, duration: torch.Tensor,
                             max_duration: int) -> None:
    """Fill the DiT's text cache (what ``get_input_embed`` computes on the first step and reuses)
    with each item's text embedding computed alone, zero-padded: the ConvNeXt text blocks
    normalise over the whole sequence, so embedding a padded batch rounds differently from
    embedding the item alone. Computed once per pass, not per step."""
    embed = transformer.text_embed
    for drop_text, slot in ((False, "text_cond"), (True, "text_uncond")):
        rows = [F.pad(embed(text[i:i + 1], seq_len=int(duration[i]), drop_text=drop_text),
                      (0, 0, 0, max_duration - int(duration[i])))
                for i in range(text.shape[0])]
        setattr(transformer, slot, torch.cat(rows, dim=0))


@contextlib.contextmanager
def _modulation_sized_as_alone(transformer: nn.Module) -> Iterator[None]:
    """While a batch is sampled, compute the time embedding and the AdaLN modulations on as many
    rows as a lone item has (1 and 2), then repeat them for the batch.

    Every row of those small matrices is the same (one flow time for the whole pass), but the
    CPU's GEMM kernels round differently for 2 rows than for 8: computing them at the lone
    item's size makes each item's arithmetic its solo arithmetic. The extra cost is a few
    (1 x dim) products per step."""
    from f5_tts.model.modules import AdaLayerNorm, AdaLayerNorm_Final

    def rows_as_alone(rows: int) -> Callable[..., torch.Tensor]:
        def hook(module: nn.Module, args: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
            alone = module.forward(args[0][:rows])
            return alone[:1].expand(args[0].shape[0], *alone.shape[1:])
        return hook

    handles = [transformer.time_embed.register_forward_hook(rows_as_alone(1))]
    handles += [module.linear.register_forward_hook(rows_as_alone(2)) for module in transformer.modules()
                if isinstance(module, (AdaLayerNorm, AdaLayerNorm_Final))]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def sample_batch(model: nn.Module, items: list[SampleItem], steps: int,
                 cfg_strength: float = CFG_STRENGTH) -> list[torch.Tensor]:
    """Sample every item; returns, per item, its mel frames ``(duration, n_mels)`` with the
    reference part restored (as ``CFM.sample`` returns them): in the model's dtype, or float32
    for a bfloat16 model."""
    from f5_tts.model.utils import lens_to_mask, list_str_to_idx

    transformer = model.transformer
    model_dtype = next(model.parameters()).dtype
    state_dtype = torch.float32 if model_dtype == torch.bfloat16 else model_dtype
    device = items[0].audio.device
    batch = len(items)
    try:
        with torch.inference_mode(), contextlib.ExitStack() as stack:
            mels = [model.mel_spec(item.audio).permute(0, 2, 1).to(model_dtype) for item in items]
            lens = torch.tensor([m.shape[1] for m in mels], device=device, dtype=torch.long)
            cond = torch.cat([F.pad(m, (0, 0, 0, int(lens.max()) - m.shape[1])) for m in mels], dim=0)
            text = list_str_to_idx([item.text for item in items], model.vocab_char_map).to(device)
            duration = torch.tensor([item.duration for item in items], device=device, dtype=torch.long)
            duration = torch.maximum(torch.maximum((text != -1).sum(dim=-1), lens) + 1, duration)
            duration = duration.clamp(max=MAX_DURATION)
            max_duration = int(duration.amax())
            cond = F.pad(cond, (0, 0, 0, max_duration - cond.shape[1]), value=0.0)
            cond_mask = F.pad(lens_to_mask(lens), (0, max_duration - int(lens.max())), value=False).unsqueeze(-1)
            step_cond = torch.where(cond_mask, cond, torch.zeros_like(cond))
            mask = lens_to_mask(duration) if batch > 1 else None
            if batch > 1:
                _cache_text_item_by_item(transformer, text, duration, max_duration)
                stack.enter_context(_modulation_sized_as_alone(transformer))

            def flow(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
                pred_cfg = transformer(x=x.to(model_dtype), cond=step_cond, text=text, time=t.to(model_dtype),
                                       mask=mask, cfg_infer=True, cache=True)
                pred, null_pred = torch.chunk(pred_cfg, 2, dim=0)
                return pred + (pred - null_pred) * cfg_strength

            noise = [item.noise(int(d), model.num_channels, device, state_dtype) for item, d in zip(items, duration)]
            y = pad_sequence(noise, padding_value=0, batch_first=True)
            t = time_grid(steps, device, state_dtype)
            for t0, t1 in zip(t[:-1], t[1:]):  # torchdiffeq's fixed-grid Euler, as CFM.sample runs it
                dt = t1 - t0
                y = y + dt * flow(t0.to(y.dtype), y).to(y.dtype)  # .to: a no-op but in bfloat16
            out = torch.where(cond_mask, cond.to(y.dtype), y)
            return [out[i, : int(duration[i])] for i in range(batch)]
    finally:
        transformer.clear_cache()
