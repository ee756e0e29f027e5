"""Celery mode: throughput with 1 and 2 workers, and the front-end's overhead per request.

    .venv/bin/python bench/celery_throughput.py [--clients 8] [--per-client 4] [--rounds 15] [--nfe 8]

Real parts, on this machine: a redis-server on a free port, Celery worker processes
(``celery -A cluster.worker worker --pool solo --concurrency 1``, one torch thread each) on the tiny
model, and the front-end's ``CeleryBackend`` in this process.

1. Throughput: ``--clients`` threads each send ``--per-client`` whole syntheses at once, with one
   worker, then with two; requests per minute. The machine's cores bound it: two workers cannot
   double the figure on a 2-core box, where the front-end and redis share those cores too.
2. Overhead: one request at a time, alternating (order flipped each round) between the local
   backend (this process's engine, one torch thread) and Celery mode with one idle worker; the
   median of the per-round ratios Celery / local, and the median difference in milliseconds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import GEN_TEXT, REF_TEXT, REF_WAV, interleave, machine_summary, median, ratios, write_tiny_model_dir  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TIMINGS = {"F5_HEARTBEAT_S": "1", "F5_BROKER_VISIBILITY_TIMEOUT": "60", "F5_TASK_TIMEOUT": "300"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis(folder: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", str(folder)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    import redis

    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            return process, f"redis://127.0.0.1:{port}/0"
        except redis.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def start_worker(name: str, url: str, model_dir: Path, folder: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("F5_")}
    env.update(TIMINGS, F5_BROKER_URL=url, F5_MODEL_DIR=str(model_dir), F5_DEVICE="cpu", F5_CPU_THREADS="1",
               F5_IDLE_UNLOAD_S="-1", C_FORCE_ROOT="1")
    log = open(folder / f"{name}.log", "wb")
    return subprocess.Popen([sys.executable, "-m", "celery", "-A", "cluster.worker", "worker", "--pool", "solo",
                             "--concurrency", "1", "-n", f"{name}@%h", "--loglevel", "WARNING",
                             "--without-mingle", "--without-gossip"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)


def wait_workers(backend, count: int, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while len(backend.workers()) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{count} worker(s) did not report within {timeout_s} s")
        time.sleep(0.2)
    backend.load()


def throughput(backend, clients: int, per_client: int, request) -> float:
    """Requests per minute for ``clients`` threads sending ``per_client`` requests each."""
    failures: list[BaseException] = []

    def client(k: int) -> None:
        for i in range(per_client):
            try:
                backend.synthesize(request.replace(seed=k * 100 + i))
            except BaseException as error:
                failures.append(error)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    t0 = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - t0
    if failures:
        raise RuntimeError(f"{len(failures)} request(s) failed: {failures[0]!r}")
    return clients * per_client / elapsed * 60


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--per-client", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=15, help="overhead rounds (one local + one Celery request)")
    parser.add_argument("--nfe", type=int, default=8)
    args = parser.parse_args(argv)
    if shutil.which("redis-server") is None:
        print("redis-server is not installed (apt-get install -y redis-server)")
        return 2
    os.environ.update(TIMINGS)
    print(f"machine: {machine_summary()}")
    from engine.request import SynthesisRequest

    request = SynthesisRequest(ref_audio=REF_WAV, ref_text=REF_TEXT, gen_text=GEN_TEXT, nfe_step=args.nfe)
    with tempfile.TemporaryDirectory(prefix="f5bench-celery-") as tmp:
        folder = Path(tmp)
        model_dir = write_tiny_model_dir(folder / "tiny")
        redis_process, url = start_redis(folder)
        os.environ["F5_BROKER_URL"] = url
        workers = []
        try:
            from engine.config import EngineConfig
            from engine.engine import Engine
            from studio.backend import LocalBackend
            from cluster.frontend.backend import CeleryBackend

            celery = CeleryBackend()
            workers.append(start_worker("w1", url, model_dir, folder))
            local = LocalBackend(Engine(EngineConfig(model_dir=model_dir, device="cpu", idle_unload_s=-1,
                                                     cpu_threads=1), start_reaper=False))
            local.load()
            wait_workers(celery, 1)
            for backend in (local, celery):  # warm up
                backend.synthesize(request.replace(seed=1))

            timings = interleave({"local": lambda: local.synthesize(request.replace(seed=7)),
                                  "celery": lambda: celery.synthesize(request.replace(seed=7))}, args.rounds)
            overhead = ratios(timings["celery"], timings["local"])
            extra_ms = median([(c - lo) * 1000 for c, lo in zip(timings["celery"].seconds, timings["local"].seconds)])
            print(f"overhead: Celery / local, median of {args.rounds} per-round ratios {median(overhead):.3f} "
                  f"(local {median(timings['local'].seconds) * 1000:.0f} ms, Celery "
                  f"{median(timings['celery'].seconds) * 1000:.0f} ms, +{extra_ms:.0f} ms per request)")

            one = throughput(celery, args.clients, args.per_client, request)
            workers.append(start_worker("w2", url, model_dir, folder))
            wait_workers(celery, 2)
            celery.synthesize(request.replace(seed=2))
            two = throughput(celery, args.clients, args.per_client, request)
            served = {w.name: w.status.served for w in celery.workers()}
            print(f"throughput, {args.clients} clients x {args.per_client} requests, NFE {args.nfe}: "
                  f"1 worker {one:.1f} req/min, 2 workers {two:.1f} req/min, ratio {two / one:.2f} "
                  f"(served per worker: {served}; {os.cpu_count()} CPU cores)")
        finally:
            for worker in workers:
                worker.terminate()
            for worker in workers:
                try:
                    worker.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    worker.kill()
            redis_process.terminate()
            redis_process.wait(timeout=10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
