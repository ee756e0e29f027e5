"""The page: the header, the fast-mode banner, the tabs and the engine panel, put together.

Each tab is built by its feature's ``tab`` module (``studio/clone/tab.py``, ...); this module only arranges them and says
how the page is served (:func:`launch_options`).
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from studio.backend import Backend
from studio.clone.handlers import CloneHandlers
from studio.clone.tab import build_clone_tab, wire_clone_tab
from studio.compare.handlers import CompareHandlers
from studio.compare.store import VerdictStore, make_store
from studio.compare.tab import build_compare_tab, wire_compare_tab
from studio.dialogue.handlers import DialogueHandlers
from studio.dialogue.tab import build_dialogue_tab, wire_dialogue_tab
from studio.dubbing.handlers import DubbingHandlers
from studio.dubbing.tab import build_dubbing_tab, wire_dubbing_tab
from studio.settings import ASSETS_DIR, StudioSettings, max_threads
from studio.ui import formatting as ui_format
from studio.ui.api_tab import build_api_tab, wire_api_tab
from studio.ui.engine_panel import build_engine_panel, wire_engine_panel
from studio.voices.handlers import VoiceHandlers
from studio.voices.library import VoiceLibrary
from studio.voices.bundled import load_voices
from studio.voices.tab import build_voices_tab, wire_voices_tab

TITLE = "F5 Voice Studio"
HEADER = f"""
<div id="app-header">
  <h1>{TITLE}</h1>
  <p>Clone a voice from a few seconds of reference audio with
  <a href="https://github.com/SWivid/F5-TTS" target="_blank" rel="noopener">F5-TTS</a>, then make it say anything.
  The model is loaded on demand and unloaded when idle, so the GPU can be shared.</p>
</div>
"""
CSS_FILE = ASSETS_DIR / "studio.css"
# Keyboard: Ctrl+Enter (Cmd+Enter) in a tab's text box presses that tab's Generate button; the
# secondary controls of the reference players in the forms (volume, speed, skip, trim, share,
# download) leave the Tab order, so Generate is a few presses away (play, clear, upload stay).
SHORTCUTS = """<script>
(() => {
  const forms = "#ref-audio, #dialogue-clip-1, #dialogue-clip-2";
  const secondary = /^(Download|Share|Adjust volume|Adjust playback speed|Skip backwards|Skip forward|Reset audio|Trim audio)/;
  let queued = false;
  const tidy = () => {
    queued = false;
    for (const el of document.querySelectorAll(`:is(${forms}) :is(button, a[download])`)) {
      const label = el.getAttribute("aria-label") || el.getAttribute("title") || "";
      if ((el.tagName === "A" || secondary.test(label)) && el.getAttribute("tabindex") !== "-1") {
        el.setAttribute("tabindex", "-1");
      }
    }
  };
  const observe = () => new MutationObserver(() => {
    if (!queued) { queued = true; requestAnimationFrame(tidy); }
  }).observe(document.body, {childList: true, subtree: true});
  if (document.body) observe(); else document.addEventListener("DOMContentLoaded", observe);
})();
document.addEventListener("keydown", (event) => {
  if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
  const pairs = [["#gen-text", "#generate-btn"], ["#dialogue-script", "#dialogue-generate"]];
  for (const [box, button] of pairs) {
    if (event.target.closest && event.target.closest(box)) {
      event.preventDefault();
      document.querySelector(button)?.click();
      return;
    }
  }
});
</script>"""


def build_demo(backend: Backend, studio: StudioSettings, library: VoiceLibrary,
               verdicts: VerdictStore | None = None) -> gr.Blocks:
    """The Blocks app on ``backend`` (forms and limits follow its settings); every handler is
    made here, on that backend, ``studio`` (the app's settings, read at start-up), ``library``
    (the voice library) and ``verdicts`` (the A/B tab's log; default: under ``studio.data_dir``)."""
    settings = backend.settings
    handlers = CloneHandlers(backend)
    library_handlers = VoiceHandlers(library, backend.settings.models)
    with gr.Blocks(title=TITLE, delete_cache=(3600, 3600)) as demo:
        gr.HTML(HEADER)
        banner = ui_format.fast_mode_banner(settings.cpu_fast_mode, settings.cpu_fast_cfg_cutoff)
        if banner:  # the opt-in fast mode is never silent: said above the form and on every result
            gr.HTML(banner)
        with gr.Tabs(overflow_behavior="wrap", elem_id="tabs"):  # on a phone every tab shows (wrapped), no menu
            with gr.Tab("Voice clone", id="clone"):
                clone = build_clone_tab(settings, load_voices())
            with gr.Tab("Voices", id="voices"):
                voices = build_voices_tab()
            with gr.Tab("Dialogue", id="dialogue"):
                dialogue = build_dialogue_tab(settings)
            with gr.Tab("Dubbing", id="dubbing"):
                dubbing = build_dubbing_tab(settings)
            with gr.Tab("A/B", id="compare"):
                compare = build_compare_tab(settings)
            with gr.Tab("API", id="api"):
                api_text = build_api_tab(settings)
        panel = build_engine_panel(handlers)  # outside the tabs: the same panel under every tab
        clone_events = wire_clone_tab(clone, settings, handlers, library_handlers)
        voices_events = wire_voices_tab(voices, library_handlers)
        dialogue_event = wire_dialogue_tab(dialogue, settings, DialogueHandlers(backend, studio, library))
        dub_event = wire_dubbing_tab(dubbing, settings, DubbingHandlers(backend, studio, library))
        compare_event = wire_compare_tab(compare, settings, CompareHandlers(
            backend, verdicts if verdicts is not None else make_store(studio), library), library_handlers, demo)
        wire_api_tab(api_text, settings, demo)
        wire_engine_panel(panel, demo, handlers)
        # The panel at once after a result (not 2 s later, still saying "busy").
        for event in (clone_events.generate, dialogue_event, dub_event, compare_event):
            event.then(handlers.status_panel, outputs=panel.status_box, queue=False, api_visibility="private",
                       show_progress="hidden")
        # Every list of voices follows the library: on page load, after a save, rename or delete.
        pickers = [clone.voice_pick, voices.selector, dubbing.default_voice, compare.voice_pick]
        views = [*pickers, voices.table, dialogue.voices_hint]

        def show_library():
            return library_handlers.library_views(len(pickers))

        for trigger in (demo.load, voices_events["refresh"]):
            trigger(show_library, outputs=views, api_visibility="private", show_progress="hidden")
        for event in (clone_events.save, *voices_events["changed"]):
            event.success(show_library, outputs=views, api_visibility="private", show_progress="hidden")
    # No queue bound (it would refuse /status too): the engine bounds the waiting line (BusyError).
    demo.queue(max_size=None)
    return demo


def launch_options(backend: Backend, max_upload_mb: float) -> dict[str, Any]:
    """Keyword arguments of ``demo.launch()`` for this deployment."""
    return dict(
        max_file_size=int(max_upload_mb * 1024 * 1024),
        allowed_paths=[str(ASSETS_DIR)],
        max_threads=max_threads(backend.settings.max_queue),
        css=CSS_FILE.read_text(encoding="utf-8"),
        head=SHORTCUTS,
        theme=gr.themes.Soft(),
        show_error=False,
    )
