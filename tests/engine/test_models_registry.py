"""The model registry: F5_MODELS, F5_MODELS_FILE, the single-model default, and one-line errors."""

from __future__ import annotations

import json

import pytest
import torch

from engine.config import ENV_VARS, ConfigError, EngineConfig, HubSource, ModelsConfig, resolve_max_loaded
from engine.errors import InputError
from engine.models.registry import (DEFAULT_MODEL_NAME, ModelRegistry, ModelSpec, check_sources, parse_models,
                                    registry_from_config)


def registry(env: dict[str, str]) -> ModelRegistry:
    return registry_from_config(ModelsConfig.from_env(env), EngineConfig.from_env(env))


@pytest.fixture
def dirs(tmp_path):
    for name in ("base", "pt"):
        (tmp_path / name).mkdir()
    return tmp_path


def test_short_form_names_directories_and_the_first_is_the_default(dirs):
    reg = registry({"F5_MODELS": f" base={dirs / 'base'} ; pt = {dirs / 'pt'};"})
    assert reg.names == ("base", "pt") and reg.default == "base"
    assert reg.spec("pt") == ModelSpec("pt", model_dir=dirs / "pt")
    assert reg.resolve(None) == reg.resolve("") == reg.resolve("  ") == "base"
    assert reg.resolve("pt") == "pt"
    with pytest.raises(InputError, match=r"Unknown model 'gpt-4o'. Available models: base, pt\."):
        reg.resolve("gpt-4o")


def test_without_f5_models_the_single_model_keeps_its_settings(dirs):
    reg = registry({"F5_MODEL_DIR": str(dirs / "base")})
    assert reg.names == (DEFAULT_MODEL_NAME,) and reg.spec(DEFAULT_MODEL_NAME).model_dir == dirs / "base"
    hub = registry({"F5_HUB_MODEL_REPO": "me/ft", "F5_HUB_MODEL_REVISION": "v2"}).spec(DEFAULT_MODEL_NAME)
    assert hub.model_dir is None and hub.hub.model_repo == "me/ft" and hub.hub.model_revision == "v2"
    assert hub.engine_config(EngineConfig()).hub == hub.hub and "hub me/ft/" in hub.source


def test_long_form_yaml_takes_directories_and_hub_models(dirs):
    (dirs / "models.yaml").write_text(
        "models:\n"
        "  - {name: base, dir: base}\n"  # relative to the file
        "  - name: pt\n"
        "    repo: someone/F5-TTS-pt\n"
        "    file: pt/model.safetensors\n"
        "    vocab: pt/vocab.txt\n"
        "    revision: abc123\n"
        "    arch: {dim: 1024, depth: 22}\n"
        "    vocoder_revision: v1\n", encoding="utf-8")
    reg = registry({"F5_MODELS_FILE": str(dirs / "models.yaml")})
    assert reg.names == ("base", "pt") and reg.spec("base").model_dir == dirs / "base"
    hub = reg.spec("pt").hub
    assert hub == HubSource(model_repo="someone/F5-TTS-pt", model_file="pt/model.safetensors",
                            vocab_file="pt/vocab.txt", model_revision="abc123",
                            arch_json=json.dumps({"dim": 1024, "depth": 22}), vocoder_revision="v1")
    config = reg.spec("pt").engine_config(EngineConfig(model_dir=dirs / "base"))
    assert config.model_dir is None and config.hub == hub  # and EngineConfig accepted the arch JSON


def test_long_form_json_as_a_mapping(dirs):
    (dirs / "models.json").write_text(json.dumps({"models": {"pt": {"dir": str(dirs / "pt")}, "base": str(dirs / "base")}}))
    reg = registry({"F5_MODELS_FILE": str(dirs / "models.json")})
    assert reg.names == ("pt", "base") and reg.default == "pt"


@pytest.mark.parametrize("value, words", [
    ("Base={base}", "F5_MODELS: model name 'Base' is invalid"),
    ("-x={base}", "model name '-x' is invalid"),
    ("a" * 33 + "={base}", "is invalid: use 1-32 characters"),
    ("base={base};base={pt}", "F5_MODELS: model name 'base' appears twice"),
    ("base", "F5_MODELS: entry 'base' is not name=directory"),
    ("base=", "is not name=directory"),
    ("base={base};pt=/no/such/dir", "F5_MODELS: model 'pt': '/no/such/dir' is not a readable directory"),
    (" ; ", "F5_MODELS lists no model"),
])
def test_short_form_errors_are_one_line_naming_the_variable_and_model(dirs, value, words):
    with pytest.raises(ConfigError) as caught:
        registry({"F5_MODELS": value.format(base=dirs / "base", pt=dirs / "pt")})
    assert words in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("text, words", [
    ("models: []", "has no `models:` list"),
    ("nothing: here", "has no `models:` list"),
    ("models: [{name: a, dir: base}, {name: a, dir: pt}]", "F5_MODELS_FILE: model name 'a' appears twice"),
    ("models: [{name: a}]", "model 'a' has no source"),
    ("models: [{name: a, dir: base, repo: x/y}]", "model 'a' has both dir and hub fields (repo)"),
    ("models: [{name: a, path: base}]", "model 'a' has unknown field(s) path"),
    ("models: [{name: a, repo: x/y, arch: {dim: 8, wings: 2}}]", "model 'a': unknown DiT setting(s) wings"),
    ("models: [{name: a, repo: x/y, arch: '{bad'}]", "model 'a': arch is not valid JSON"),
    ("models: [{name: a, repo: ''}]", "model 'a': repo must be a non-empty string"),
    ("models: [{name: 'A b', dir: base}]", "model name 'A b' is invalid"),
    ("models: [{name: a, dir: nowhere}]", "model 'a':"),
    ("models: [oops]", "each model is a mapping with a name"),
    ("models: [unclosed", "cannot be read"),
])
def test_file_errors_are_one_line(dirs, text, words):
    path = dirs / "models.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        registry({"F5_MODELS_FILE": str(path)})
    assert words in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("env, words", [
    ({"F5_MODELS": "a=/x", "F5_MODELS_FILE": "/y"}, "F5_MODELS and F5_MODELS_FILE are both set"),
    ({"F5_MODELS_FILE": "/no/such/file.yaml"}, "F5_MODELS_FILE='/no/such/file.yaml' is not a readable file"),
    ({"F5_MAX_LOADED_MODELS": "0"}, "F5_MAX_LOADED_MODELS=0 must be at least 1"),
    ({"F5_MAX_LOADED_MODELS": "two"}, "F5_MAX_LOADED_MODELS='two' is not a valid int"),
])
def test_models_config_errors(env, words):
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)")):
        ModelsConfig.from_env(env)


def test_max_loaded_defaults_to_one_on_an_accelerator_and_all_on_the_cpu():
    assert ENV_VARS["F5_MAX_LOADED_MODELS"][0] == "auto" and ModelsConfig.from_env({}).max_loaded is None
    assert ModelsConfig.from_env({"F5_MAX_LOADED_MODELS": "auto"}).max_loaded is None
    assert resolve_max_loaded(None, torch.device("cuda"), 3) == 1
    assert resolve_max_loaded(None, torch.device("cpu"), 3) == 3
    assert resolve_max_loaded(2, torch.device("cuda"), 3) == 2


def test_an_incomplete_directory_is_reported_not_fatal(dirs, tiny_model_dir):
    reg = parse_models(f"good={tiny_model_dir};broken={dirs / 'pt'}")
    problems = check_sources(ModelRegistry(reg))
    assert list(problems) == ["broken"] and "missing model.safetensors" in problems["broken"]


def test_build_pool_serves_the_single_configured_model_and_resolves_auto_on_the_cpu(tiny_model_dir, tmp_path):
    from engine.models.build import build_pool

    engine_config = EngineConfig(model_dir=tiny_model_dir, device="cpu")
    pool = build_pool(engine_config, ModelsConfig())
    try:
        assert pool.names == (DEFAULT_MODEL_NAME,) and pool.max_loaded == 1
        assert pool.engine(None).config == engine_config  # the single model's engine is today's engine
    finally:
        pool.close()
    pool = build_pool(engine_config, ModelsConfig(models=f"x={tiny_model_dir};y={tiny_model_dir}"))
    try:
        assert pool.names == ("x", "y") and pool.max_loaded == 2  # auto on the CPU: every model
        assert pool.engine("y").config.model_dir == tiny_model_dir and pool.engine("y").device.type == "cpu"
    finally:
        pool.close()
    pool = build_pool(engine_config, ModelsConfig(models=f"x={tiny_model_dir};y={tiny_model_dir}", max_loaded=1))
    pool.close()
    assert pool.max_loaded == 1
