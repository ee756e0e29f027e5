"""The model registry: which models a server offers, by name, and where each one's weights are.

Three ways to say it (``engine.config.ModelsConfig`` holds the raw settings):

* ``F5_MODELS="base=/models/base;pt=/models/f5-pt"`` -- the short form: ``name=directory`` pairs
  separated by ``;`` (or new lines), each a model directory laid out as ``F5_MODEL_DIR``'s;
* ``F5_MODELS_FILE=models.yaml`` -- the long form (YAML, or JSON, which YAML reads too)::

      models:
        - name: base
          dir: /models/base            # relative paths are relative to this file
        - name: pt
          repo: firstpixel/F5-TTS-pt-br   # a hub model: the F5_HUB_* settings, per model
          file: pt-br/model_last.safetensors
          vocab: pt-br/vocab.txt
          revision: main
          arch: {dim: 768, depth: 18, heads: 12, ...}  # optional: all DiT settings; F5TTS_v1_Base's if left out
          vocoder_repo: charactr/vocos-mel-24khz
          vocoder_revision: main

  (``models:`` may also be a mapping of name to fields);
* neither: today's single model from ``F5_MODEL_DIR`` / ``F5_HUB_*`` under :data:`DEFAULT_MODEL_NAME`.

The first model is the default. Names are short (:data:`NAME_PATTERN`) and unique; every mistake
raises :class:`~engine.config.ConfigError` with one line naming the variable and the model. A
directory that exists but is incomplete is *not* a start-up error: :func:`check_sources` reports
it, and only that model's requests fail (the others keep serving).
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any, Mapping

import yaml

from engine.config import ConfigError, EngineConfig, HubSource, ModelsConfig
from engine.errors import InputError, ModelUnavailableError
from engine.model_source import ARCH_KEYS, read_model_dir

#: The name of the one model of a server configured without F5_MODELS / F5_MODELS_FILE.
DEFAULT_MODEL_NAME = "f5-tts"
#: A model name: 1-32 characters, lower-case letters, digits, ``.``, ``_``, ``-``, not starting with a sign.
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,31}")
#: Long-form keys of a hub model -> the HubSource field each sets.
HUB_FIELDS = {"repo": "model_repo", "file": "model_file", "revision": "model_revision", "vocab": "vocab_file",
              "arch": "arch_json", "vocoder_repo": "vocoder_repo", "vocoder_revision": "vocoder_revision"}


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One model a server offers: its name and exactly one source, a directory or the hub."""

    name: str
    model_dir: Path | None = None
    hub: HubSource | None = None

    @property
    def source(self) -> str:
        """Where the weights come from, for status panels and logs."""
        if self.model_dir is not None:
            return f"model directory {self.model_dir}"
        hub = self.hub or HubSource()
        return f"hub {hub.model_repo}/{hub.model_file}@{hub.model_revision}"

    def engine_config(self, base: EngineConfig) -> EngineConfig:
        """``base`` (every other setting) with this model's source."""
        return dataclasses.replace(base, model_dir=self.model_dir, hub=self.hub or base.hub)


@dataclasses.dataclass(frozen=True)
class ModelRegistry:
    """The configured models, in order; the first is the default."""

    specs: tuple[ModelSpec, ...]

    def __post_init__(self) -> None:
        if not self.specs:
            raise ConfigError("no model is configured")
        seen: set[str] = set()
        for spec in self.specs:
            if spec.name in seen:
                raise ConfigError(f"model name {spec.name!r} appears twice")
            seen.add(spec.name)

    @property
    def names(self) -> tuple[str, ...]:
        """Every model's name, the default first."""
        return tuple(spec.name for spec in self.specs)

    @property
    def default(self) -> str:
        """The default model's name (the first one)."""
        return self.specs[0].name

    def spec(self, name: str) -> ModelSpec:
        """The spec of ``name`` (which :meth:`resolve` has checked)."""
        return next(spec for spec in self.specs if spec.name == name)

    def resolve(self, name: str | None) -> str:
        """The model a request asked for: ``None`` or ``""`` is the default; an unknown name raises
        :class:`~engine.errors.InputError` listing the valid ones."""
        if name is None or not str(name).strip():
            return self.default
        name = str(name).strip()
        if name not in self.names:
            raise InputError(f"Unknown model {name[:40]!r}. Available models: {', '.join(self.names)}.")
        return name


def registry_from_config(models: ModelsConfig, engine: EngineConfig) -> ModelRegistry:
    """The registry of a server: F5_MODELS, else F5_MODELS_FILE, else the single configured model."""
    if models.models:
        specs = parse_models(models.models)
    elif models.models_file is not None:
        specs = read_models_file(models.models_file)
    else:
        specs = (ModelSpec(DEFAULT_MODEL_NAME, model_dir=engine.model_dir,
                           hub=None if engine.model_dir is not None else engine.hub),)
    variable = "F5_MODELS" if models.models else "F5_MODELS_FILE"
    try:
        return ModelRegistry(specs)
    except ConfigError as exc:
        raise ConfigError(f"{variable}: {exc}") from None


def parse_models(text: str, variable: str = "F5_MODELS") -> tuple[ModelSpec, ...]:
    """The short form: ``name=directory`` pairs separated by ``;`` or new lines."""
    specs = []
    for entry in re.split(r"[;\n]", text):
        entry = entry.strip()
        if not entry:
            continue
        name, sep, directory = entry.partition("=")
        name, directory = name.strip(), directory.strip()
        if not sep or not directory:
            raise ConfigError(f"{variable}: entry {entry[:60]!r} is not name=directory")
        check_name(name, variable)
        specs.append(ModelSpec(name, model_dir=_directory(directory, None, variable, name)))
    if not specs:
        raise ConfigError(f"{variable} lists no model")
    return tuple(specs)


def read_models_file(path: Path, variable: str = "F5_MODELS_FILE") -> tuple[ModelSpec, ...]:
    """The long form (YAML or JSON): ``models:`` as a list of entries with ``name``, or a mapping
    of name to entry; each entry has ``dir`` or hub fields (:data:`HUB_FIELDS`)."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{variable}={str(path)!r} cannot be read: {first}") from None
    entries = data.get("models") if isinstance(data, dict) else None
    if isinstance(entries, dict):
        entries = [{"name": name, **(fields if isinstance(fields, dict) else {"dir": fields})}
                   for name, fields in entries.items()]
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{variable}={str(path)!r} has no `models:` list")
    return tuple(_entry(entry, Path(path).parent, variable) for entry in entries)


def _entry(entry: Any, folder: Path, variable: str) -> ModelSpec:
    if not isinstance(entry, dict):
        raise ConfigError(f"{variable}: each model is a mapping with a name, not {str(entry)[:40]!r}")
    name = str(entry.get("name", "")).strip()
    check_name(name, variable)
    unknown = sorted(set(entry) - {"name", "dir"} - set(HUB_FIELDS))
    if unknown:
        raise ConfigError(f"{variable}: model {name!r} has unknown field(s) {', '.join(map(str, unknown))}; "
                          f"use dir, or {', '.join(HUB_FIELDS)}")
    hub_fields = {key: entry[key] for key in HUB_FIELDS if key in entry}
    if "dir" in entry:
        if hub_fields:
            raise ConfigError(f"{variable}: model {name!r} has both dir and hub fields ({', '.join(hub_fields)}): "
                              "use one source")
        return ModelSpec(name, model_dir=_directory(str(entry["dir"]), folder, variable, name))
    if not hub_fields:
        raise ConfigError(f"{variable}: model {name!r} has no source: give dir, or a hub repo and file")
    return ModelSpec(name, hub=_hub(hub_fields, variable, name))


def _hub(fields: Mapping[str, Any], variable: str, name: str) -> HubSource:
    values: dict[str, str] = {}
    for key, value in fields.items():
        if key == "arch":
            value = _arch_json(value, variable, name)
        elif not isinstance(value, (str, int)) or not str(value).strip():
            raise ConfigError(f"{variable}: model {name!r}: {key} must be a non-empty string")
        values[HUB_FIELDS[key]] = str(value).strip()
    return HubSource(**values)


def _arch_json(value: Any, variable: str, name: str) -> str:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ConfigError(f"{variable}: model {name!r}: arch is not valid JSON") from None
    if not isinstance(value, dict) or not value:
        raise ConfigError(f"{variable}: model {name!r}: arch must be a mapping of DiT settings")
    unknown = sorted(set(value) - ARCH_KEYS)
    if unknown:
        raise ConfigError(f"{variable}: model {name!r}: unknown DiT setting(s) {', '.join(map(str, unknown))}")
    return json.dumps(value)


def _directory(raw: str, folder: Path | None, variable: str, name: str) -> Path:
    path = Path(raw).expanduser()
    if folder is not None and not path.is_absolute():
        path = folder / path
    if not path.is_dir():
        raise ConfigError(f"{variable}: model {name!r}: {str(path)!r} is not a readable directory")
    return path


def check_name(name: str, variable: str = "F5_MODELS") -> None:
    """Raise a one-line :class:`ConfigError` unless ``name`` matches :data:`NAME_PATTERN`."""
    if not NAME_PATTERN.fullmatch(name):
        raise ConfigError(f"{variable}: model name {name[:40]!r} is invalid: use 1-32 characters of a-z, 0-9, "
                          "'.', '_' and '-', starting with a letter or digit")


def check_sources(registry: ModelRegistry) -> dict[str, str]:
    """Check every model directory's files (``read_model_dir``) without loading anything: the
    name -> problem of each incomplete one (hub models are checked when they load)."""
    problems = {}
    for spec in registry.specs:
        if spec.model_dir is None:
            continue
        try:
            read_model_dir(spec.model_dir)
        except ModelUnavailableError as exc:
            problems[spec.name] = str(exc)
    return problems
