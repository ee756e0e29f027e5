"""The code keeps the shape the README describes: small modules, one-way layers (app -> studio ->
cluster.frontend -> engine, and cluster.worker -> engine), and no reaching into the engine's private
parts from outside it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 320  # "no module over ~300 lines"
PRIVATE_ENGINE_ATTRIBUTE = re.compile(
    r"\b(engine|\w+_engine|\w*backend\.engine)\._[a-z]\w*|\._(loaded|placed_on|placed_dtype|master|turn|lifecycle|"
    r"residency|requests|transcriber|shadow|cond|in_flight|expires_mono)\b")
# The front-end still takes two shared types and the status formatting from studio (the backend's
# contract moves below both in the next step); nothing else of studio may be imported from cluster.
STUDIO_IMPORTS_LEFT = {"cluster/frontend/backend.py": {"studio.backend"},
                       "cluster/frontend/status.py": {"studio.backend", "studio.ui_format"}}


def _python_files(*parts: str) -> list[Path]:
    files: list[Path] = []
    for part in parts:
        path = ROOT / part
        files += [path] if path.is_file() else sorted(path.rglob("*.py"))
    return files


def test_no_module_is_over_about_300_lines():
    long = {str(p.relative_to(ROOT)): n for p in _python_files("engine", "studio", "cluster", "app.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"split these modules by job: {long}"


def test_nothing_outside_the_engine_touches_its_private_attributes():
    offenders = []
    for path in _python_files("app.py", "studio", "cluster", "bench", "tests"):
        if path.name == "test_structure.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if PRIVATE_ENGINE_ATTRIBUTE.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "use Engine.inspect() / status() / lease() instead:\n" + "\n".join(offenders)


def _imports(path: Path, depth: int = 1) -> set[str]:
    """The absolute imports of a module (anywhere in it, lazy ones too), cut to ``depth`` parts
    (``from studio import ui_format`` counts as ``studio.ui_format``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names if node.module.count(".") < depth - 1)
    return {".".join(name.split(".")[:depth]) for name in names if name.count(".") >= depth - 1}


def test_the_engine_imports_no_queue_and_no_ui():
    """Celery mode lives in cluster/: the engine runs the same with or without it."""
    for path in _python_files("engine"):
        found = _imports(path) & {"celery", "redis", "kombu", "gradio"}
        assert not found, f"{path.relative_to(ROOT)} imports {found}: that belongs in cluster/ or studio/"


def test_layers_point_one_way():
    """engine is the bottom layer; cluster imports engine (its worker and front-end share only
    cluster.protocol and cluster.config); studio imports engine and cluster.frontend; app.py
    assembles them; nothing imports studio from engine or cluster."""
    for path in _python_files("engine"):
        assert not _imports(path) & {"studio", "cluster", "app", "gradio"}, f"{path} imports a layer above the engine"
    for path in _python_files("cluster/worker"):
        assert not _imports(path) & {"studio", "app", "gradio"}, f"{path} imports a layer above the worker"
        assert not {"cluster.frontend"} & _imports(path, 2), f"{path} imports the front-end"
    for path in _python_files("cluster/frontend"):
        assert "app" not in _imports(path) and "cluster.worker" not in _imports(path, 2), path
        upward = {name for name in _imports(path, 2) if name.split(".")[0] == "studio"}
        assert upward <= STUDIO_IMPORTS_LEFT.get(path.relative_to(ROOT).as_posix(), set()), f"{path} imports {upward}"
    for path in _python_files("cluster/protocol.py", "cluster/config.py"):
        assert not _imports(path) & {"studio", "cluster", "app"}, f"{path}: the shared parts import only engine"
    for path in _python_files("studio"):
        assert "app" not in _imports(path), f"{path} imports app.py"
        assert "cluster.worker" not in _imports(path, 2), f"{path} imports the worker"
