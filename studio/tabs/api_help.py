"""The "API" tab: how to call the app from Python (the defaults shown are the engine's own)."""

from __future__ import annotations

import gradio as gr

from studio.backend import FrontendSettings


def api_help(settings: FrontendSettings) -> str:
    """The tab's Markdown: a gradio_client example with this server's defaults."""
    d = settings.defaults
    return f"""
### Use it from Python

```python
from gradio_client import Client, handle_file

client = Client("http://127.0.0.1:7860/")
audio_path, details, seed = client.predict(
    ref_audio=handle_file("assets/voices/voice_male_us.wav"),
    ref_text="Some call me nature, others call me mother nature.",
    gen_text="Hello from the API.",
    nfe_step={settings.default_nfe_step}, speed={d.speed}, cross_fade={d.cross_fade}, remove_silence={d.remove_silence}, seed={d.seed},  # -1: random
    api_name="/synthesize",
)
print(audio_path, details, seed)           # a 24 kHz WAV file
print(client.predict(api_name="/status"))  # also /load and /unload
```

Errors (bad audio, empty or too long text, out-of-range settings, a full queue) arrive as
`gradio_client.exceptions.AppError` with a readable message.
"""


def build_api_tab(settings: FrontendSettings) -> None:
    """Lay out the tab's content where the caller is."""
    gr.Markdown(api_help(settings))
