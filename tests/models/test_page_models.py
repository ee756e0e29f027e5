"""The clone tab's model list, in-process: hidden with one model, listing every model (the default
selected) with several; picking a saved voice selects the model it prefers."""

from __future__ import annotations

import dataclasses

import gradio as gr

from studio.clone.tab import build_clone_tab
from studio.voices.handlers import VoiceHandlers
from studio.voices.library import VoiceLibrary
from tests.e2e.conftest import REF_TEXT, REF_WAV
from tests.voices.fakes import settings


def model_list(models: tuple[str, ...]) -> gr.Dropdown:
    with gr.Blocks():
        return build_clone_tab(dataclasses.replace(settings(), models=models), []).model


def test_the_model_list_shows_only_with_several_models():
    single = model_list(("f5-tts",))
    assert single.visible is False and single.value == "f5-tts"
    several = model_list(("base", "pt"))
    assert several.visible is True and several.value == "base"
    assert [choice[0] for choice in several.choices] == ["base", "pt"]


def test_picking_a_voice_selects_its_model(tmp_path):
    library = VoiceLibrary(tmp_path, max_voices=5)
    handlers = VoiceHandlers(library, ("base", "pt"))
    handlers.api_save_voice("Pt voice", str(REF_WAV), REF_TEXT, "", "pt")
    handlers.api_save_voice("Any voice", str(REF_WAV), REF_TEXT, "")
    audio, text, model = handlers.pick_voice_and_model("Pt voice")
    assert text == REF_TEXT and model == "pt" and audio[1].size
    _, _, model = handlers.pick_voice_and_model("Any voice")
    assert isinstance(model, type(gr.skip())), "a voice without a preference leaves the list as it is"
