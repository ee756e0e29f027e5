"""The README tells the truth: its commands are the ones CI runs, its table matches the code, its API
example works against the running app, and the bundled assets are what it says."""

from __future__ import annotations

import contextlib
import io
import json
import re

import soundfile as sf

from studio import docs

from .conftest import ASSETS, ROOT, assert_valid_speech_audio

README = (ROOT / "README.md").read_text(encoding="utf-8")


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_configuration_table_is_up_to_date():
    assert docs.render(README) == README, "run `python -m studio.docs` to refresh the README's table"


def test_ci_runs_the_readme_test_command():
    test_command = code_blocks("bash")[1].strip().splitlines()[-1]
    assert "pytest" in test_command
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    assert test_command in ci_lines
    assert ci_lines[-1] == test_command, "the test command must be the last thing .ci/run does"


def test_readme_api_example_works(app_server, monkeypatch):
    example = next(block for block in code_blocks("python") if "gradio_client" in block)
    assert 'Client("http://127.0.0.1:7860/")' in example
    code = example.replace('Client("http://127.0.0.1:7860/")',
                           f'Client({app_server.url!r}, verbose=False, download_files={str(app_server.downloads)!r})')
    code = code.replace("nfe_step=32", "nfe_step=4")  # same call, faster on the tiny model
    monkeypatch.chdir(ROOT)
    namespace: dict = {}
    with contextlib.redirect_stdout(io.StringIO()) as out:
        exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own documentation
    assert_valid_speech_audio(namespace["audio_path"])
    assert namespace["status"]["state"] == "ready"
    assert str(namespace["seed"]) in out.getvalue()


def test_bundled_voices():
    voices = json.loads((ASSETS / "voices.json").read_text(encoding="utf-8"))["voices"]
    assert len(voices) >= 2
    for voice in voices:
        info = sf.info(str(ASSETS / voice["file"]))
        assert (info.samplerate, info.channels, info.subtype) == (24000, 1, "PCM_16"), voice["file"]
        assert 3.0 <= info.duration <= 6.0, (voice["file"], info.duration)
        assert voice["ref_text"].strip() and voice["example_text"].strip()
        assert (ASSETS / voice["file"]).stat().st_size < 400_000


def test_screenshot_is_small_and_present():
    shot = ASSETS / "screenshot.png"
    assert shot.is_file() and shot.stat().st_size < 400_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_readme_api_defaults_are_the_engines():
    from engine.options import DEFAULTS

    row = next(line for line in README.splitlines() if line.startswith("| `/synthesize` |"))
    shown = dict(re.findall(r"`(\w+)` \((?:int, )?([-\w.]+)", row))
    assert shown["nfe_step"] == str(DEFAULTS.nfe_step) and shown["speed"] == str(DEFAULTS.speed)
    assert shown["cross_fade"] == str(DEFAULTS.cross_fade) and shown["remove_silence"] == str(DEFAULTS.remove_silence)
    assert shown["seed"] == str(DEFAULTS.seed)
    example = next(block for block in code_blocks("python") if "gradio_client" in block)
    assert f"nfe_step={DEFAULTS.nfe_step}, speed={DEFAULTS.speed}, cross_fade={DEFAULTS.cross_fade}" in example
