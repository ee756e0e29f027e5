"""Fixtures of the reliability suite: engines on a fake clock, `python app.py` subprocesses, and the
figures of the run (written to artifacts/reliability.json and printed at the end).

Knobs (environment variables, all optional):

    RELIABILITY_FULL=1                 run the long tests too (same as `-m "soak or slow"`)
    RELIABILITY_SOAK_CLIENTS / _REQUESTS   size of the default soak (4 x 10)
    RELIABILITY_FULL_SOAK_CLIENTS / _REQUESTS  size of the full soak (8 x 25)
    RELIABILITY_MEMORY_CYCLES          unload/reload cycles of the default memory test (6; full: 300)
    RELIABILITY_RACE_ITERATIONS        reaper-race iterations of the default run (40; full: 1000)
    RELIABILITY_TORCH_THREADS          torch threads in this process and in the app (1; the box is shared)
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from tests import app_process
from tests.app_process import ARTIFACTS, ROOT, App, assert_valid_audio, rss_mb  # noqa: F401 - for the test modules
from tests.engine_factory import engine_factory

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

HERE = Path(__file__).resolve().parent
FIGURES_FILE = ARTIFACTS / "reliability.json"
ASSETS = ROOT / "assets"
REF_WAV = ASSETS / "voices" / "voice_male_us.wav"  # 3.6 s, 24 kHz mono
REF_TEXT = "Some call me nature, others call me mother nature."
GEN_TEXT = "Hello there, this is a short reliability test."
FAST = {"nfe_step": 4, "speed": 1.0, "cross_fade": 0.15, "remove_silence": False}
LONG_MARKERS = ("soak", "slow")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


TORCH_THREADS = env_int("RELIABILITY_TORCH_THREADS", 1)


# ------------------------------------------------------------------------------------ markers


def pytest_configure(config):
    config.addinivalue_line("markers", "soak: the full-size soak (8 clients x 25 requests); opt-in")
    config.addinivalue_line("markers", "slow: takes more than a minute on a 2-core CPU machine")


def _ours(nodeid: str) -> bool:
    return nodeid.replace("\\", "/").startswith("tests/reliability/")


def _full_run(config) -> bool:
    if os.environ.get("RELIABILITY_FULL", "").strip() in ("1", "true", "yes"):
        return True
    # With any -m expression the caller chooses (e.g. -m soak, -m slow, -m "not slow").
    return bool((config.getoption("markexpr", default="") or "").strip())


def pytest_collection_modifyitems(config, items):
    """Long reliability tests run only on request (`-m soak`, `-m slow`, `-m "soak or slow"` or
    RELIABILITY_FULL=1), so the default `pytest` stays fast; the reduced soak and the short versions
    of everything always run."""
    if _full_run(config):
        return
    skip = pytest.mark.skip(reason="long reliability test: run with -m 'soak or slow' or RELIABILITY_FULL=1")
    for item in items:
        if _ours(item.nodeid) and any(item.get_closest_marker(m) for m in LONG_MARKERS):
            item.add_marker(skip)


# ------------------------------------------------------------------------------------ figures


class Figures:
    """What the run proved, for the README: written to artifacts/reliability.json at the end."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.data: dict[str, Any] = {
            "api_requests": {"served": 0, "failed_unexpectedly": 0, "refused_as_expected": 0},
            "engine_requests": {"served": 0, "failed_unexpectedly": 0, "refused_as_expected": 0},
            "faults_survived": {},
            "bad_inputs": {},
            "memory": {},
            "temp_files": {},
            "soak": {},
            "races": {},
            "security": {},
            "cancellations": {},
            "load_failures": {},
            # issue 19's hostile inputs: each tried one is refused cleanly or served, and the server stays up
            "hostile_inputs": {"tried": 0, "refused_cleanly": 0, "served": 0, "server_still_up": 0},
        }

    def count(self, where: str, outcome: str, n: int = 1) -> None:
        with self._lock:
            self.data[where][outcome] += n

    def fault(self, name: str, n: int = 1) -> None:
        with self._lock:
            faults = self.data["faults_survived"]
            faults[name] = faults.get(name, 0) + n

    def put(self, section: str, key: str, value: Any) -> None:
        with self._lock:
            self.data[section][key] = value

    def merge(self, other: dict[str, Any]) -> None:
        """Add another process's figures (an xdist worker's) to these: counts add up, the rest is set."""
        with self._lock:
            for section, values in other.items():
                mine = self.data.setdefault(section, {})
                for key, value in values.items():
                    both_counts = isinstance(value, int) and isinstance(mine.get(key, 0), int)
                    mine[key] = mine.get(key, 0) + value if both_counts else value


FIGURES = Figures()
_OUTCOMES: dict[str, int] = {"passed": 0, "failed": 0, "skipped": 0, "xfailed": 0, "xpassed": 0}
_STARTED = time.time()


@pytest.fixture(scope="session")
def figures() -> Figures:
    return FIGURES


def pytest_runtest_logreport(report):
    if not _ours(report.nodeid):
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        if hasattr(report, "wasxfail"):
            key = "xfailed" if report.outcome == "skipped" else "xpassed"
        else:
            key = report.outcome
        _OUTCOMES[key] = _OUTCOMES.get(key, 0) + 1


def pytest_sessionfinish(session):
    """On a pytest-xdist worker: hand this process's figures to the controller, which prints them."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["reliability_figures"] = json.loads(json.dumps(FIGURES.data, default=str))


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """On the pytest-xdist controller: take in a finished worker's figures."""
    FIGURES.merge(getattr(node, "workeroutput", {}).get("reliability_figures", {}))


def _summary() -> dict[str, Any]:
    data = json.loads(json.dumps(FIGURES.data, default=str))
    data["faults_survived_total"] = sum(data["faults_survived"].values())
    data["bad_inputs_tried"] = len(data["bad_inputs"])
    data["tests"] = dict(_OUTCOMES)
    data["finished_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    data["duration_s"] = round(time.time() - _STARTED, 1)
    try:
        data["git_commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                            text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        data["git_commit"] = None
    data["machine"] = {"cpus": os.cpu_count(), "torch_threads": TORCH_THREADS}
    return data


def pytest_terminal_summary(terminalreporter):
    if sum(_OUTCOMES.values()) == 0:
        return
    data = _summary()
    ARTIFACTS.mkdir(exist_ok=True)
    FIGURES_FILE.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    api, eng = data["api_requests"], data["engine_requests"]
    lines = [
        f"API requests: {api['served']} served, {api['failed_unexpectedly']} failed unexpectedly, "
        f"{api['refused_as_expected']} refused as expected (bad input / busy / cancelled)",
        f"engine requests (in-process): {eng['served']} served, {eng['failed_unexpectedly']} failed unexpectedly, "
        f"{eng['refused_as_expected']} refused as expected",
        f"faults injected and survived: {data['faults_survived_total']} {data['faults_survived']}",
        f"bad inputs tried: {data['bad_inputs_tried']}",
    ]
    hostile = data["hostile_inputs"]
    lines.append(f"hostile inputs: {hostile['tried']} tried, {hostile['refused_cleanly']} refused cleanly, "
                 f"{hostile['served']} served, server still up after {hostile['server_still_up']}")
    for key, value in data["memory"].items():
        lines.append(f"memory {key}: {value}")
    for key, value in data["soak"].items():
        lines.append(f"soak {key}: {value}")
    for key, value in data["temp_files"].items():
        lines.append(f"temp files {key}: {value}")
    lines.append(f"figures written to {FIGURES_FILE.relative_to(ROOT)}")
    terminalreporter.write_sep("=", "reliability figures")
    for line in lines:
        terminalreporter.write_line(line)


# ------------------------------------------------------------------------------------ helpers


def count_files(folder: str | Path) -> int:
    total = 0
    for _root, _dirs, files in os.walk(folder):
        total += len(files)
    return total


def list_files(folder: str | Path) -> set[str]:
    found = set()
    for root, _dirs, files in os.walk(folder):
        for name in files:
            found.add(os.path.join(root, name))
    return found


def wait_for(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


# ------------------------------------------------------------------------------------ in-process engines


@pytest.fixture(scope="session")
def model_dir(smoke_model_dir) -> Path:
    """The tiny model directory (made once per session by the root conftest)."""
    return smoke_model_dir


@pytest.fixture
def torch_threads():
    """This box has 2 shared cores: one torch thread keeps in-process timings steady (restored after)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(TORCH_THREADS)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def make_engine(model_dir, torch_threads):
    """Factory: a CPU Engine on a FakeClock using the real default loader; closed afterwards."""
    with engine_factory(model_dir) as factory:
        yield factory


@pytest.fixture
def request_kwargs() -> dict[str, Any]:
    return dict(ref_audio=str(REF_WAV), ref_text=REF_TEXT, gen_text=GEN_TEXT, nfe_step=4, seed=7)


@pytest.fixture
def model_copy(model_dir, tmp_path) -> Path:
    """A private copy of the tiny model directory that a test may break and fix."""
    target = tmp_path / "model"
    shutil.copytree(model_dir, target)
    return target


# ------------------------------------------------------------------------------------ the app


def launch_app(base: Path, model_dir: Path, name: str, **settings: str) -> contextlib.AbstractContextManager[App]:
    """`tests.app_process.launch_app` for this suite: the app unloads 0.2 s after each request unless
    `settings` say otherwise, runs TORCH_THREADS OpenMP threads, and its log goes to
    artifacts/reliability-{name}.log."""
    return app_process.launch_app(base, model_dir, f"reliability-{name}",
                                  **{"F5_IDLE_UNLOAD_S": "0.2", "OMP_NUM_THREADS": str(TORCH_THREADS), **settings})


def synthesize(client, ref_audio: str | None = None, ref_text: str = REF_TEXT, gen_text: str = GEN_TEXT,
               **settings):
    """One /synthesize call with the fast settings; returns (audio path, details, seed)."""
    from gradio_client import handle_file

    kwargs = {**FAST, "seed": 7, **settings}
    if ref_audio is not None and not isinstance(ref_audio, dict):
        ref_audio = handle_file(str(ref_audio))
    return client.predict(ref_audio=ref_audio, ref_text=ref_text, gen_text=gen_text, api_name="/synthesize",
                          **kwargs)


def status(client) -> dict[str, Any]:
    return client.predict(api_name="/status")


SHARED_HEADER_TIMEOUT_S = 5  # F5_HEADER_TIMEOUT_S of shared_app


@pytest.fixture(scope="session")
def shared_app(model_dir, tmp_path_factory) -> Iterator[App]:
    """One app for the soak, cancel, bad-input and security modules: it unloads 0.2 s after each
    request (so every test also exercises unload/reload), at most 8 requests may wait, 5 MB uploads,
    request headers within 5 s (not the production 10 s, so the slowloris test is quick; not less: during the
    200-submission flood a test client starved of CPU once took over 2 s to send its headers and was cut off)."""
    base = tmp_path_factory.mktemp("shared_app")
    with launch_app(base, model_dir, "shared", F5_IDLE_UNLOAD_S="0.2", F5_MAX_QUEUE="8",
                    F5_MAX_UPLOAD_MB="5", F5_HEADER_TIMEOUT_S=str(SHARED_HEADER_TIMEOUT_S)) as app:
        client = app.client()
        path, _, _ = synthesize(client, REF_WAV)  # warm up: the first request imports f5_tts's text tools
        assert_valid_audio(path)
        yield app
        assert app.alive(), "the app died during the reliability run"
