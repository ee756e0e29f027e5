"""The "API" tab: how to call the app from Python, with the address the page was opened at (the
defaults shown are the engine's own)."""

from __future__ import annotations

import re

import gradio as gr

from studio.backend import FrontendSettings

DEFAULT_URL = "http://127.0.0.1:7860/"
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")


def server_url(request: gr.Request | None) -> str:
    """The address the browser used (behind a proxy: its forwarded host and scheme), or the
    default when the request does not say; anything odd in the headers is ignored."""
    try:
        headers = request.headers
        host = (headers.get("x-forwarded-host") or headers.get("host") or "").split(",")[0].strip()
        scheme = (headers.get("x-forwarded-proto") or getattr(request.url, "scheme", "") or "http")
        scheme = scheme.split(",")[0].strip().lower()
    except Exception:  # no request (a test, a script): the default address
        return DEFAULT_URL
    if not _HOST.match(host) or scheme not in ("http", "https"):
        return DEFAULT_URL
    return f"{scheme}://{host}/"


def api_help(settings: FrontendSettings, url: str = DEFAULT_URL) -> str:
    """The tab's Markdown: gradio_client examples for this server, with its defaults."""
    d = settings.defaults
    return f"""
### Use it from Python

```python
from gradio_client import Client, handle_file

client = Client("{url}")
audio_path, details, seed = client.predict(
    ref_audio=handle_file("assets/voices/voice_male_us.wav"),
    ref_text="Some call me nature, others call me mother nature.",
    gen_text="Hello from the API.",
    nfe_step={settings.default_nfe_step}, speed={d.speed}, cross_fade={d.cross_fade}, remove_silence={d.remove_silence}, seed={d.seed},  # -1: random
    api_name="/synthesize",
)
print(audio_path, details, seed)           # a 24 kHz WAV file
print(client.predict(api_name="/status"))  # also /load and /unload

# The voice library, a dialogue and a dub
client.predict(name="Narrator", ref_audio=handle_file("narrator.wav"),
               ref_text="What the clip says.", note="", api_name="/save_voice")
print(client.predict(api_name="/voices"))  # also /rename_voice (name, new_name) and /delete_voice (name)
mix, lines_zip, timings, srt, vtt = client.predict(
    script="Narrator: Once upon a time.\\n[pause 0.5]\\nNarrator: The end.",
    nfe_step={settings.default_nfe_step}, seed=-1, gap_s=0.3, api_name="/dialogue")
track, report, cues_zip, srt, vtt = client.predict(
    subtitles=handle_file("film.srt"), voice="Narrator", speaker_voices="",  # or "Alice=Narrator"
    nfe_step={settings.default_nfe_step}, seed=-1, api_name="/dub")
```

Errors (bad audio, empty or too long text, out-of-range settings, a bad script line or cue, a full
queue) arrive as `gradio_client.exceptions.AppError` with a readable message.

### Or as OpenAI's speech API

The same server answers OpenAI's `POST /v1/audio/speech` (and `GET /v1/voices`, `/v1/models`,
`/v1/status`), so the official `openai` client, Open WebUI or `curl` work with it:

```python
from openai import OpenAI

client = OpenAI(base_url="{url}v1", api_key="unused-unless-F5_API_KEY-is-set")
client.audio.speech.create(model="f5-tts", voice="<a voice from /v1/voices>", input="Hello!",
                           response_format="wav").write_to_file("hello.wav")
```
"""


def build_api_tab(settings: FrontendSettings) -> gr.Markdown:
    """Lay out the tab's content where the caller is; :func:`wire_api_tab` fills in the address."""
    return gr.Markdown(api_help(settings), elem_id="api-help")


def wire_api_tab(help_text: gr.Markdown, settings: FrontendSettings, demo: gr.Blocks) -> None:
    """Show the examples with the address this page was opened at."""
    def fill(request: gr.Request):
        return api_help(settings, server_url(request))

    demo.load(fill, outputs=help_text, queue=False, api_visibility="private", show_progress="hidden")
