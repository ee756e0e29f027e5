"""The typed request and its one validator: what the engine, the Celery front-end and the REST API share."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from engine.config import EngineConfig
from engine.errors import InputError
from engine.request import SynthesisRequest

from .conftest import GEN_TEXT, REF_TEXT

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def request_(ref_wav) -> SynthesisRequest:
    return SynthesisRequest(ref_audio=ref_wav, ref_text=REF_TEXT, gen_text=GEN_TEXT)


def test_check_fixes_the_defaults_and_the_seed(request_, tiny_model_dir):
    config = EngineConfig(model_dir=tiny_model_dir, default_nfe_step=12)
    checked = request_.check(config)
    assert checked.request.nfe_step == 12 == checked.options.nfe_step
    assert checked.request.seed is not None and checked.request.seed == checked.options.seed
    assert checked.request.replace(seed=None) == request_.replace(nfe_step=12, quality_check=False)  # nothing else
    quality = dataclasses.replace(config, quality_check=True, asr_model=str(tiny_model_dir))  # a directory: can hear
    assert request_.check(quality).request.quality_check is True  # the server's default (F5_QUALITY_CHECK) ...
    assert request_.replace(quality_check=False).check(quality).request.quality_check is False  # ... or the request's
    # Without a speech recognition model the default is off, and asking for the check is refused at once.
    assert request_.check(dataclasses.replace(quality, asr_model="")).request.quality_check is False
    with pytest.raises(InputError, match="quality check needs a speech recognition model"):
        request_.replace(quality_check=True).check(dataclasses.replace(quality, asr_model=""))
    assert checked.clip.sample_rate > 0 and checked.gen_text == GEN_TEXT and checked.ref_text == REF_TEXT
    # Checking the fixed request again gives the same request: a rerun on another worker is the same request.
    assert checked.request.check(config).request == checked.request


@pytest.mark.parametrize("change, words", [
    ({"gen_text": "  "}, "text to generate is empty"),
    ({"nfe_step": 3}, "NFE steps must be between 4 and 64"),
    ({"speed": "fast"}, "Speed must be a number"),
    ({"seed": 2**40}, "Seed must be between"),
    ({"ref_text": ""}, "automatic transcription is not available"),
    ({"ref_audio": None}, "reference audio"),
])
def test_check_refuses_bad_input_in_the_engines_words(request_, tiny_model_dir, change, words):
    with pytest.raises(InputError, match=words):
        request_.replace(**change).check(EngineConfig(model_dir=tiny_model_dir))


def test_json_round_trip_keeps_every_field_but_the_local_path(request_):
    request = request_.replace(seed=5, duration_s=2.5, fallback_reason="GPU lease failed", fast_start=False)
    data = request.to_json()
    assert "ref_audio" not in data and data["seed"] == 5
    assert SynthesisRequest.from_json({**data, "from_a_newer_front_end": 1}, "/tmp/clip.wav") == \
        request.replace(ref_audio="/tmp/clip.wav")


def test_one_validator_for_every_front_end():
    """The option, text and clip checks run in SynthesisRequest.check only: the engine, the Celery
    front-end and the REST API call it (directly or through the backend), none re-does them."""
    callers = []
    for path in [*ROOT.joinpath("engine").rglob("*.py"), *ROOT.joinpath("cluster").rglob("*.py"),
                 *ROOT.joinpath("studio").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in (
                    "validate_options", "read_reference"):
                callers.append(str(path.relative_to(ROOT)))
    # The request's check; the voices feature reading clips that are not synthesis requests (a voice being
    # saved, the reference check's hints, the clip lengths a dub's timing needs); and the A/B tab checking a
    # variant's settings (not a request: no clip, no text) with the engine's option rules before either side runs.
    assert set(callers) <= {"engine/request.py", "studio/voices/library.py", "studio/voices/references.py",
                            "studio/voices/reference_check.py", "studio/compare/variants.py",
                            "studio/compare/handlers.py"}, callers
    assert "engine/request.py" in callers


def test_the_backend_contract_takes_the_typed_request():
    from studio.backend.contract import Backend

    for verb in (Backend.synthesize, Backend.synthesize_stream):
        assert list(verb.__annotations__)[:2] == ["request", "on_progress"]
        assert verb.__annotations__["request"] in ("SynthesisRequest", SynthesisRequest)
    assert dataclasses.is_dataclass(SynthesisRequest) and SynthesisRequest.__dataclass_params__.frozen
