"""Real parts for the Celery-mode tests: a redis-server from the OS packages on a free port, and
Celery worker processes started with the celery CLI on the tiny model.

    with RedisServer(tmp) as redis_server, WorkerProcess.start(...) as worker: ...

Everything they write (the server's dir, the workers' logs) stays under the folder the caller
gives; the logs are copied to artifacts/ when they stop.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from tests.app_process import ARTIFACTS, ROOT, free_port

REDIS_SERVER = "/usr/bin/redis-server"
WORKER_START_TIMEOUT_S = 180

# Short timings so a lost worker is noticed and its request taken over within seconds.
CELERY_ENV = {"F5_HEARTBEAT_S": "1", "F5_BROKER_VISIBILITY_TIMEOUT": "4", "F5_TASK_TIMEOUT": "120"}


class RedisServer:
    """``redis-server`` on 127.0.0.1 and a free port, its own folder; no persistence, or with
    ``appendonly=True`` an append-only file synced at every write (set it between restarts to
    choose whether the next start finds the data)."""

    def __init__(self, folder: Path, appendonly: bool = False):
        self.appendonly = appendonly
        if not Path(REDIS_SERVER).exists():
            if os.environ.get("CI"):
                pytest.fail(f"{REDIS_SERVER} is missing: apt-get install -y redis-server")
            pytest.skip(f"{REDIS_SERVER} is not installed (apt-get install -y redis-server)")
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> "RedisServer":
        """Start the server and wait until it answers PING."""
        log = open(self.folder / "redis.log", "ab")
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "always",
             "--dir", str(self.folder), "--protected-mode", "yes"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return self
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not answer")

    def stop(self) -> None:
        """Stop the server (its data is gone: no persistence)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        self.process = None

    def persist(self) -> None:
        """Turn the append-only file on in the running server (written from its data now), so the
        next start finds this data and not a stale file from before a start without it."""
        client = self.client()
        client.config_set("appendonly", "yes")
        deadline = time.monotonic() + 20
        while True:
            info = client.info("persistence")
            if info["aof_enabled"] and not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"]:
                break
            assert time.monotonic() < deadline, "the append-only file was not written"
            time.sleep(0.05)
        self.appendonly = True

    def kill(self) -> None:
        """SIGKILL, as a crash: what was not in the append-only file is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=20)
        self.process = None

    def restart(self) -> None:
        """Stop and start again on the same port."""
        self.stop()
        self.start()

    def client(self) -> redis.Redis:
        """A new client of this server."""
        return redis.Redis.from_url(self.url, socket_connect_timeout=2)

    def __enter__(self) -> "RedisServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


class WorkerProcess:
    """``celery -A <app> worker --pool solo --concurrency 1 -n <name>@%h`` on the tiny model, on the CPU
    (or another pool and concurrency: ``launch(..., pool="threads", concurrency=3)``)."""

    def __init__(self, name: str, app: str, folder: Path, env: dict[str, str]):
        self.name_prefix = name
        self.app = app
        self.log_path = folder / f"worker-{name}.log"
        self.env = env
        self.process: subprocess.Popen | None = None
        self.name: str | None = None  # the full node name, known once it beats

    @classmethod
    def launch(cls, name: str, app: str, folder: Path, broker_url: str, model_dir: Path, pool: str = "solo",
               concurrency: int = 1, **extra_env: str):
        """Start a worker process (returns at once; see :meth:`wait_ready`)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("F5_", "GRADIO_"))}
        env.update(CELERY_ENV)
        env.update({"F5_BROKER_URL": broker_url, "F5_MODEL_DIR": str(model_dir), "F5_DEVICE": "cpu",
                    "F5_IDLE_UNLOAD_S": "600", "F5_CPU_THREADS": "1", "HF_HUB_OFFLINE": "1",
                    "WANDB_MODE": "disabled", "PYTHONUNBUFFERED": "1", "C_FORCE_ROOT": "1"})
        env.update(extra_env)
        worker = cls(name, app, folder, env)
        with open(worker.log_path, "ab") as log:
            worker.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", app, "worker", "--pool", pool, "--concurrency", str(concurrency),
                 "-n", f"{name}@%h", "--loglevel", "INFO", "--without-mingle", "--without-gossip"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return worker

    def wait_ready(self, client: redis.Redis, timeout_s: float = WORKER_START_TIMEOUT_S) -> dict:
        """Wait for this worker's first heartbeat; returns it."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"worker {self.name_prefix} exited with {self.process.returncode}:\n{self.log_text()[-4000:]}")
            beat = self.heartbeat(client)
            if beat is not None:
                self.name = beat["name"]
                return beat
            time.sleep(0.2)
        pytest.fail(f"worker {self.name_prefix} sent no heartbeat in {timeout_s} s:\n{self.log_text()[-4000:]}")

    def heartbeat(self, client: redis.Redis) -> dict | None:
        """This worker's last heartbeat (None when it has none)."""
        for key in client.scan_iter(match=f"f5:worker:{self.name_prefix}@*"):
            raw = client.get(key)
            if raw:
                return json.loads(raw)
        return None

    def kill(self) -> None:
        """SIGKILL: no clean-up, no acknowledgement, no goodbye."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=20)

    def stop(self) -> None:
        """A warm shutdown (SIGTERM), then SIGKILL if it hangs; the log goes to artifacts/."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        ARTIFACTS.mkdir(exist_ok=True)
        if self.log_path.exists():
            shutil.copyfile(self.log_path, ARTIFACTS / self.log_path.name)

    def log_text(self) -> str:
        """The worker's log so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""
