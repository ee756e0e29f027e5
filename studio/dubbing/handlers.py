"""Handlers of the Dubbing tab and the API's ``/dub``: read and check the subtitle file, give each
cue a voice (per speaker, or one for all), then dub every cue under one lease."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import gradio as gr

from engine.errors import InputError
from studio.audio_files import new_job_dir, write_wav, write_zip
from studio.backend import Backend, FrontendSettings
from studio.backend.zerogpu import zerogpu_synthesis
from studio.clone import handlers
from studio.clone.handlers import check_arg, int_if_whole, model_arg, progress_words, seed_arg, user_error
from studio.dubbing.runner import DubResult, run_dub
from studio.dubbing.subtitles import Cue, decode, parse_subtitles, speakers
from studio.loudness import LoudnessPolicy
from studio.mix_captions import write_captions
from studio.runner import ProgressRelay
from studio.settings import StudioSettings
from studio.ui import feedback
from studio.voices.handlers import voice_names
from studio.voices.library import VoiceLibrary, VoiceNotFound
from studio.voices.names import name_key
from studio.voices.references import check_clips, resolve

log = logging.getLogger(__name__)

MAX_VOICE_MAP_CHARS = 65_536  # speaker_voices text: far more than any real list of speakers
TRACK_LABEL = "Dubbed track"
SPEAKER_SLOTS = 6  # speakers (dub_ui takes one argument per slot) the tab offers a voice list for (others use the voice for all)


def read_cues(path: Any, settings: FrontendSettings, limits: StudioSettings) -> list[Cue]:
    """The uploaded file's checked cues."""
    if not path:
        raise InputError("Please upload a subtitle file (.srt or .vtt).")
    try:
        data = Path(str(path)).read_bytes()
    except OSError:
        raise InputError("The subtitle file could not be read; please upload it again.") from None
    return parse_subtitles(decode(data), max_cues=limits.max_cues, max_text_chars=settings.max_text_chars,
                           filename=str(path), max_track_s=limits.max_track_seconds)


def parse_voice_map(text: Any) -> dict[str, str]:
    """``speaker_voices`` of ``/dub``: a JSON object, or ``Speaker=Voice`` per line (or ``;``)."""
    raw = str(text or "").strip()
    if not raw:
        return {}
    if len(raw) > MAX_VOICE_MAP_CHARS:
        raise InputError(f"speaker_voices is {len(raw)} characters long; the limit is {MAX_VOICE_MAP_CHARS}.")
    if raw.startswith("{"):
        if json_depth(raw) > 1:
            raise InputError("speaker_voices must be one flat JSON object of speaker names to voice names "
                             "(nothing nested).")
        try:
            data = json.loads(raw)
        except ValueError as error:
            raise InputError(f"speaker_voices is not valid JSON ({error.msg}, character {error.pos}).") from None
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
            raise InputError("speaker_voices must map speaker names to voice names (all text).")
        return {k.strip(): v.strip() for k, v in data.items() if v.strip()}
    mapping = {}
    for number, part in enumerate(raw.replace(";", "\n").splitlines(), 1):
        if not part.strip():
            continue
        speaker, sep, voice = part.partition("=")
        if not sep or not speaker.strip():
            raise InputError(f"speaker_voices entry {number} ({part.strip()!r}): write 'Speaker=Voice'.")
        if voice.strip():
            mapping[speaker.strip()] = voice.strip()
    return mapping


def json_depth(raw: str) -> int:
    """The deepest nesting of ``{``/``[`` in JSON text (outside strings), found without parsing it."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in raw:
        if in_string:
            escaped, in_string = (False, True) if escaped else (ch == "\\", ch != '"')
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "}]":
            depth -= 1
    return deepest


def assign_voices(cues: list[Cue], mapping: dict[str, str], default_voice: str | None, library: VoiceLibrary
                  ) -> dict[int, str]:
    """Each cue's voice name: its speaker's voice, else the voice for all, else a library voice of
    the speaker's own name; every cue left without one is named in the error."""
    in_file = {name_key(s): s for s in speakers(cues)}
    chosen = {}
    for speaker, voice in mapping.items():
        if name_key(speaker) not in in_file:
            listed = ", ".join(in_file.values()) or "none"
            raise InputError(f"Speaker {speaker!r} has a voice but is not in the subtitles (speakers: {listed}).")
        chosen[name_key(speaker)] = voice
    voices: dict[int, str] = {}
    missing: dict[str, list[int]] = {}
    for cue in cues:
        key = name_key(cue.speaker) if cue.speaker else None
        voice = chosen.get(key) if key else None
        voice = voice or (default_voice or "").strip() or None
        if voice is None and cue.speaker:
            try:
                voice = library.get(cue.speaker).name
            except VoiceNotFound:
                voice = None
        if voice is None:
            missing.setdefault(cue.speaker or "", []).append(cue.number)
        else:
            voices[cue.number] = voice
    if missing:
        parts = [f"{'speaker ' + repr(s) if s else 'no speaker'} (cue {', '.join(map(str, n[:8]))}"
                 f"{', ...' if len(n) > 8 else ''})" for s, n in missing.items()]
        raise InputError("These cues have no voice: " + "; ".join(parts) +
                         ". Choose a voice for each speaker, or one voice for all cues.")
    return voices


def prepare(path: Any, mapping: dict[str, str], default_voice: str | None, settings: FrontendSettings,
            limits: StudioSettings, library: VoiceLibrary):
    """The checked cues, each cue's :class:`Reference` and the checked clips, before any work."""
    cues = read_cues(path, settings, limits)
    names = assign_voices(cues, mapping, default_voice, library)
    references = resolve(names.values(), library, {})
    by_cue = {number: references[name_key(name)] for number, name in names.items()}
    clips = check_clips(references.values(), settings.max_ref_seconds)
    return cues, by_cue, clips


def write_outputs(result: DubResult) -> dict[str, str]:
    """The track, the ZIP of placed cues (with the report; a stopped dub's with a summary.txt
    saying so) and the captions (SRT, VTT) as files; name -> path (``track``, ``zip``, ``srt``, ``vtt``)."""
    folder = new_job_dir("dub")
    track = write_wav(folder / "dub.wav", result.audio, result.sample_rate)
    names = [f"cue_{r.cue:03d}.wav" for r in result.reports]
    extra = {"report.json": result.report_json()}
    if result.stopped:
        extra["summary.txt"] = result.summary() + "\n"
    archive = write_zip(folder / "dub-cues.zip", zip(names, result.clips), result.sample_rate, extra)
    return {"track": str(track), "zip": str(archive), **write_captions(folder, "dub", result.caption_cues())}


class DubbingHandlers:
    """The Dubbing tab's upload and Dub, and the API's ``/dub``, on one backend (made where the page
    is assembled)."""

    def __init__(self, backend: Backend, limits: StudioSettings, library: VoiceLibrary):
        self.backend = backend
        self.library = library
        self.limits = limits  # cues, track length (read at start-up)
        self.whole = zerogpu_synthesis(backend)  # ZeroGPU: each cue whole inside spaces.GPU; None elsewhere
        self.describe_progress = progress_words(backend)

    def _run(self, path, mapping, default_voice, nfe_step, seed, relay, should_stop=None, quality_check=None,
             model=None):
        """Check everything, then the dub's events (nothing runs before the first one is asked for)."""
        settings = self.backend.settings
        cues, by_cue, clips = prepare(path, mapping, default_voice, settings, self.limits, self.library)
        return len(cues), run_dub(cues, by_cue, clips, self.backend, nfe_step=int_if_whole(nfe_step),
                                  seed=seed_arg(seed), on_progress=relay, synthesize_whole=self.whole,
                                  should_stop=should_stop, loudness=LoudnessPolicy.of(settings),
                                  quality_check=check_arg(quality_check), model=model_arg(model))


    def dub_api(self, subtitles, voice, speaker_voices, nfe_step, seed, quality_check=None, model=None,
                progress=gr.Progress()):
        """API endpoint ``/dub`` on ``model`` (empty: the default): returns (the track WAV, the per-cue
        report as a list of dicts (with each cue's quality and levelling), the ZIP of cues, SRT captions,
        VTT captions). ``quality_check`` None: the server's default (F5_QUALITY_CHECK)."""
        relay = ProgressRelay(progress, rewrite=self.describe_progress)
        result = None
        try:
            _, events = self._run(subtitles, parse_voice_map(speaker_voices), voice, nfe_step, seed, relay,
                                  quality_check=quality_check, model=model)
            for event, value in events:
                if event == "done":
                    result = value
        except Exception as error:
            raise user_error(error, "Dubbing") from None
        log.info("dub: %s", result.summary())
        files = write_outputs(result)
        return files["track"], [r.to_dict() for r in result.reports], files["zip"], files["srt"], files["vtt"]


    def inspect_upload(self, path):
        """The tab's upload: (a summary line, the error block, the speakers found, then each slot's update)."""
        hidden = [gr.update(visible=False, value=None) for _ in range(SPEAKER_SLOTS)]
        if not path:
            return ("", "", [], *hidden)
        try:
            cues = read_cues(path, self.backend.settings, self.limits)
        except Exception as error:  # under the file, one problem per line, until the next upload
            return ("", feedback.error_html(user_error(error, "Reading the subtitles").message), [], *hidden)
        found = speakers(cues)
        names = {name_key(n): n for n in voice_names(self.library)}
        updates = [gr.update(visible=True, label=f"Voice for {s}", choices=list(names.values()),
                             value=names.get(name_key(s))) for s in found[:SPEAKER_SLOTS]]
        updates += hidden[len(updates):]
        length = cues[-1].end_s
        summary = (f"{len(cues)} cues, {length:.1f} s, speakers: {', '.join(found) if found else 'none named'}"
                   + (f" (the first {SPEAKER_SLOTS} get their own list; the rest use the voice for all)"
                      if len(found) > SPEAKER_SLOTS else ""))
        return (summary, "", found, *updates)


    def dub_ui(self, path, default_voice, found_speakers, nfe_step, seed, voice_1, voice_2, voice_3, voice_4,
               voice_5, voice_6, quality_check=None, progress=gr.Progress(), request: gr.Request = None):
        """The tab's Dub: the report fills cue by cue; then (the track, the report, the files (ZIP, SRT,
        VTT), a summary, the error block). Its Stop (:func:`studio.clone.handlers.stop_job`) ends it after the cue in progress,
        keeping the cues made; a problem shows under the subtitle file until the next Dub. (One argument
        per speaker slot, not ``*voices``: Gradio passes the progress and the request only to named
        positional parameters.)"""
        slot_voices = (voice_1, voice_2, voice_3, voice_4, voice_5, voice_6)[:SPEAKER_SLOTS]
        key = handlers.job_stop_key(request, "dub")
        signal = handlers.STOPS.start(key)
        try:
            yield from self._dub_job(path, default_voice, found_speakers, nfe_step, seed, slot_voices, progress, signal,
                                     quality_check)
        except gr.Error as error:
            yield gr.skip(), gr.skip(), gr.skip(), "", feedback.error_html(error.message)
        finally:
            handlers.STOPS.finish(key, signal)


    def _dub_job(self, path, default_voice, found_speakers, nfe_step, seed, slot_voices, progress, signal,
                 quality_check=None):
        mapping = {speaker: voice for speaker, voice in zip(found_speakers or [], slot_voices) if voice}
        clock = feedback.JobClock()
        relay = ProgressRelay(progress, rewrite=clock.rewrite(self.describe_progress))
        rows: list[list[Any]] = []
        result = None
        try:
            total, events = self._run(path, mapping, default_voice, nfe_step, seed, relay,
                                      should_stop=lambda: signal.fired, quality_check=quality_check)
            yield gr.update(value=None, label=TRACK_LABEL), [], None, "Starting...", ""
            for event, value in events:
                if event == "cue":
                    rows.append(value.row())
                    yield gr.skip(), rows, gr.skip(), f"{len(rows)} of {total} cues done · {clock.text(len(rows) / total)}", \
                        gr.skip()
                    relay.repeat()
                else:
                    result = value
        except Exception as error:
            raise user_error(error, "Dubbing") from None
        log.info("dub: %s", result.summary())
        if result.stopped and not result.reports:
            yield None, [], None, "**Stopped** before the first cue was done.", ""
            return
        files = write_outputs(result)
        label = f"{TRACK_LABEL} · stopped after {len(result.reports)} of {result.planned} cues" if result.stopped \
            else TRACK_LABEL
        summary = result.summary().replace("Stopped", "**Stopped**", 1)
        yield (gr.update(value=files["track"], label=label), [r.row() for r in result.reports],
               [files["zip"], files["srt"], files["vtt"]],
               f"{summary} Took {feedback.clock_text(clock.elapsed_s())}.", "")
