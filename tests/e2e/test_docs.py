"""The README and docs/ tell the truth: the README's commands are the ones CI runs, the configuration
table matches the code, the API example works against the running app, every link resolves, and the
bundled assets are what they say."""

from __future__ import annotations

import contextlib
import io
import json
import re

import soundfile as sf

from studio import docs

from .conftest import ASSETS, ROOT, assert_valid_speech_audio

README = (ROOT / "README.md").read_text(encoding="utf-8")
API_DOC = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
DOC_PAGES = ("usage", "api", "deploying", "scaling-out", "engine", "reliability", "performance")


def code_blocks(language: str, text: str = README) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def test_configuration_table_is_up_to_date():
    page = docs.CONFIG_DOC.read_text(encoding="utf-8")
    assert docs.render(page) == page, "run `python -m studio.docs` to refresh the table in docs/deploying.md"


def test_the_readme_is_short_and_leads_into_every_doc_page():
    assert len(README.splitlines()) < 250
    for page in DOC_PAGES:
        assert f"](docs/{page}.md)" in README, page


def test_every_relative_link_in_the_docs_resolves():
    broken = []
    for path in [ROOT / "README.md", *(ROOT / "docs" / f"{page}.md" for page in DOC_PAGES)]:
        text = path.read_text(encoding="utf-8")
        for target in re.findall(r"\]\((?!https?:|mailto:)([^)\s]+)\)", text):
            file, _, anchor = target.partition("#")
            linked = (path.parent / file).resolve() if file else path
            if not linked.exists():
                broken.append(f"{path.name}: {target}")
            elif anchor and linked.suffix == ".md":
                headings = {re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
                            for line in linked.read_text(encoding="utf-8").splitlines() if line.startswith("#")}
                if anchor not in headings:
                    broken.append(f"{path.name}: {target}")
    assert not broken, broken


def test_ci_runs_the_readme_test_command():
    test_command = code_blocks("bash")[1].strip().splitlines()[-1]
    assert "pytest" in test_command
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    assert test_command in ci_lines
    assert ci_lines[-1] == test_command, "the test command must be the last thing .ci/run does"


def test_readme_api_example_works(app_server, monkeypatch):
    example = next(block for block in code_blocks("python", API_DOC) if "gradio_client" in block)
    assert 'Client("http://127.0.0.1:7860/")' in example
    code = example.replace('Client("http://127.0.0.1:7860/")',
                           f'Client({app_server.url!r}, verbose=False, download_files={str(app_server.downloads)!r})')
    code = code.replace("nfe_step=32", "nfe_step=4")  # same call, faster on the tiny model
    monkeypatch.chdir(ROOT)
    namespace: dict = {}
    with contextlib.redirect_stdout(io.StringIO()) as out:
        exec(compile(code, "docs/api.md", "exec"), namespace)  # noqa: S102 - our own documentation
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

    row = next(line for line in API_DOC.splitlines() if line.startswith("| `/synthesize` |"))
    shown = dict(re.findall(r"`(\w+)` \((?:int, )?([-\w.]+)", row))
    assert shown["nfe_step"] == str(DEFAULTS.nfe_step) and shown["speed"] == str(DEFAULTS.speed)
    assert shown["cross_fade"] == str(DEFAULTS.cross_fade) and shown["remove_silence"] == str(DEFAULTS.remove_silence)
    assert shown["seed"] == str(DEFAULTS.seed)
    example = next(block for block in code_blocks("python", API_DOC) if "gradio_client" in block)
    assert f"nfe_step={DEFAULTS.nfe_step}, speed={DEFAULTS.speed}, cross_fade={DEFAULTS.cross_fade}" in example
