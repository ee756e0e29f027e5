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
# Celery mode's front-end implements the backend contract; that module (which imports only engine)
# is all it may take from studio.
CONTRACT = "studio.backend.contract"
OUR_PACKAGES = ("engine", "studio", "cluster")


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
    (``from studio import ui_format`` counts as ``studio.ui.formatting``)."""
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
        upward = {name for name in _imports(path, 3) if name.split(".")[0] == "studio"}
        assert upward <= {CONTRACT}, f"{path} imports {upward - {CONTRACT}}: only the backend contract"
    for path in _python_files("cluster/protocol.py", "cluster/config.py"):
        assert not _imports(path) & {"studio", "cluster", "app"}, f"{path}: the shared parts import only engine"
    assert not _imports(ROOT / "studio/backend/contract.py") & {"studio", "cluster", "gradio"}, "the contract is engine-only"
    for path in _python_files("studio"):
        assert "app" not in _imports(path), f"{path} imports app.py"
        assert "cluster.worker" not in _imports(path, 2), f"{path} imports the worker"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """Our modules and the modules of ours each one imports (lazy imports included; ``from a import b``
    is an edge to ``a.b`` when that is a module, and to ``a`` itself)."""
    files = {_module_name(p): p for p in _python_files(*OUR_PACKAGES)}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                module = node.module or ""
                if node.level:
                    module = ".".join(here[:len(here) - node.level + 1] + ([module] if module else []))
                candidates = [module, *(f"{module}.{alias.name}" for alias in node.names)]
            else:
                continue
            for candidate in candidates:
                while candidate and candidate not in files:
                    candidate = candidate.rpartition(".")[0]
                if candidate and candidate != name:
                    targets.add(candidate)
        graph[name] = targets
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_among_our_modules():
    graph = _import_graph()
    assert {"engine.engine", "studio.backend.contract", "cluster.frontend.backend"} <= graph.keys()
    assert "studio.backend.contract" in graph["cluster.frontend.backend"], "the graph sees the imports"
    assert not _cycles(graph), f"import cycles: {_cycles(graph)}"


def test_the_backend_is_handed_in_never_fetched_from_a_global():
    """app.py makes the backend once (``make_backend``) and hands it to the page, the tabs, the
    handlers and the REST server: no module fetches it again."""
    fetchers = [f"{path.relative_to(ROOT)}:{number}" for path in _python_files("app.py", "engine", "studio", "cluster",
                                                                               "bench")
                for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                if re.search(r"\b(get_backend|set_backend)\(", line)]
    assert not fetchers, f"take the backend as a parameter instead: {fetchers}"
    callers = [path.relative_to(ROOT).as_posix() for path in _python_files("app.py", "engine", "studio", "cluster",
                                                                          "bench", "tests")
               if re.search(r"(?<!def )\bmake_backend\(", path.read_text(encoding="utf-8"))
               and path.name != "test_structure.py"]
    assert callers == ["app.py"], f"the backend is made where the app is assembled, only: {callers}"


# Settings are read in their settings modules, once at start-up; these few other reads are of the
# process's environment itself, not of a setting of ours.
ENVIRON_READERS = {
    "engine/config.py": "the engine's settings",
    "studio/settings.py": "the app's settings",
    "cluster/config.py": "Celery mode's settings",
    "cluster/frontend/backend.py": "the front-end's engine settings, once when the backend is made",
    "engine/__init__.py": "setdefault of WANDB_MODE and OMP_WAIT_POLICY before torch loads",
    "engine/speed/threads.py": "OpenMP's own OMP_WAIT_POLICY, to report it",
    "engine/zerogpu.py": "the platform's SPACES_ZERO_GPU",
    "studio/temp_dir.py": "sets GRADIO_TEMP_DIR for Gradio before it is imported",
    "app.py": "LOG_LEVEL for logging.basicConfig, and the temp folder it logs",
}


def test_the_environment_is_read_only_where_settings_are_read():
    readers = {path.relative_to(ROOT).as_posix() for path in _python_files("app.py", "engine", "studio", "cluster")
               if re.search(r"\bos\.(environ|getenv)\b", path.read_text(encoding="utf-8"))}
    assert readers <= ENVIRON_READERS.keys(), f"read settings in a settings module, once: {readers - ENVIRON_READERS.keys()}"


def _lines_matching(pattern: str, *parts: str) -> list[str]:
    return [f"{path.relative_to(ROOT)}:{number}" for path in _python_files(*parts)
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if re.search(pattern, line)]


def test_one_of_each():
    """One progress type, one ZeroGPU wrapper, one F5 length estimate."""
    assert _lines_matching(r"^ProgressFn\s*=", "engine", "studio", "cluster") == ["engine/progress.py:8"]
    assert [hit.split(":")[0] for hit in _lines_matching(r"\bwith_zerogpu\(", "app.py", "studio", "cluster")] == \
        ["studio/backend/zerogpu.py"], "whole syntheses on ZeroGPU come from studio.backend.zerogpu"
    assert [hit.split(":")[0] for hit in _lines_matching(r"SHORT_TEXT_SPEED|\b0\.3 if len\(", "engine", "studio")] \
        == ["engine/text_input.py"] * 2, "F5's length estimate is engine.text_input.estimated_frames"
