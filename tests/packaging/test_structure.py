"""The code keeps the shape the README describes: small modules, one-way layers (app -> studio ->
engine), and no reaching into the engine's private parts from outside it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 320  # "no module over ~300 lines"
PRIVATE_ENGINE_ATTRIBUTE = re.compile(
    r"\b(engine|\w+_engine|\w*backend\.engine)\._[a-z]\w*|\._(loaded|placed_on|placed_dtype|master|turn|lifecycle|"
    r"residency|requests|transcriber|shadow|cond|in_flight|expires_mono)\b")


def _python_files(*parts: str) -> list[Path]:
    files: list[Path] = []
    for part in parts:
        path = ROOT / part
        files += [path] if path.is_file() else sorted(path.rglob("*.py"))
    return files


def test_no_module_is_over_about_300_lines():
    long = {str(p.relative_to(ROOT)): n for p in _python_files("engine", "studio", "app.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"split these modules by job: {long}"


def test_nothing_outside_the_engine_touches_its_private_attributes():
    offenders = []
    for path in _python_files("app.py", "studio", "bench", "tests"):
        if path.name == "test_structure.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if PRIVATE_ENGINE_ATTRIBUTE.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "use Engine.inspect() / status() / lease() instead:\n" + "\n".join(offenders)


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_layers_point_one_way():
    for path in _python_files("engine"):
        assert not _imports(path) & {"studio", "app", "gradio"}, f"{path} imports a layer above the engine"
    for path in _python_files("studio"):
        assert "app" not in _imports(path), f"{path} imports app.py"
