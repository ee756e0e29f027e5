"""Celery mode end to end, with real parts: redis-server, two Celery worker processes on the tiny
model, and `python app.py` as the front-end (F5_BACKEND=celery), used through gradio_client, a
browser and an in-process CeleryBackend on the same broker.

The tests run in file order and share the processes; the last one kills a worker.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time

import numpy as np
import pytest
from gradio_client import handle_file

from cluster.frontend.backend import CeleryBackend
from engine.quality.transcriber import NO_ASR_MESSAGE
from engine.errors import InputError
from tests.app_process import assert_valid_audio

from .conftest import REF_TEXT, REF_WAV, synthesis

LONG_TEXT = " ".join(f"This is sentence number {n} of a text long enough to be cut into several chunks by the engine."
                     for n in range(1, 9))
SERVED = re.compile(r"request (\w+): ok \(attempt (\d+)\)")


def api_synthesize(client, gen_text: str, seed: int, nfe_step: int = 4):
    """``/synthesize`` through gradio_client; returns (audio path, details, seed)."""
    return client.predict(ref_audio=handle_file(str(REF_WAV)), ref_text=REF_TEXT, gen_text=gen_text,
                          nfe_step=nfe_step, speed=1.0, cross_fade=0.15, remove_silence=False, seed=seed,
                          api_name="/synthesize")


def served_counts(cluster) -> dict[str, int]:
    """Each live worker's ``served`` counter, from its heartbeat."""
    client = cluster.redis.client()
    return {name: worker.heartbeat(client)["status"]["served"] for name, worker in cluster.workers.items()
            if worker.heartbeat(client) is not None}


def served_ids(cluster) -> list[str]:
    """Task ids the workers' logs say they served (one entry per time served)."""
    return [m.group(1) for worker in cluster.workers.values() for m in SERVED.finditer(worker.log_text())]


def test_status_lists_every_worker_and_the_queue(cluster):
    status = cluster.app.client().predict(api_name="/status")
    names = {worker["name"] for worker in status["workers"]}
    assert names == {cluster.workers["w1"].name, cluster.workers["w2"].name}
    assert status["queue_length"] == 0
    assert {"state", "device", "served", "loads", "fallbacks", "waiting"} <= status.keys()  # one engine's shape
    for worker in status["workers"]:
        assert worker["device"] == "cpu" and worker["seen_s_ago"] < 5 and worker["task"] is None


def test_load_now_loads_the_model_on_every_worker(cluster):
    status = cluster.app.client().predict(api_name="/load")
    assert [worker["state"] for worker in status["workers"]] == ["ready", "ready"], status["workers"]
    assert status["state"] == "ready" and status["loads"] == 2


def test_twenty_requests_from_four_clients_are_all_served_by_both_workers(cluster):
    before, ids_before = served_counts(cluster), served_ids(cluster)
    results: dict[tuple[int, int], tuple] = {}
    failures: list[BaseException] = []

    def client_run(k: int) -> None:
        client = cluster.app.client()
        try:
            for i in range(5):
                results[(k, i)] = api_synthesize(client, f"Client {k} asks for request {i}.", seed=1000 * k + i)
        except BaseException as error:  # reported below
            failures.append(error)

    threads = [threading.Thread(target=client_run, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not failures, failures
    assert len(results) == 20
    for (k, i), (audio, details, seed) in results.items():
        assert seed == 1000 * k + i and "ran on **cpu**" in details
        assert_valid_audio(audio)
    gained = {name: served_counts(cluster)[name] - before[name] for name in before}
    assert sum(gained.values()) == 20 and min(gained.values()) >= 2, gained  # spread over both workers
    new_ids = served_ids(cluster)[len(ids_before):]
    assert len(new_ids) == len(set(new_ids)) == 20  # each served once


def test_progress_reaches_api_clients(cluster):
    job = cluster.app.client().submit(ref_audio=handle_file(str(REF_WAV)), ref_text=REF_TEXT, gen_text=LONG_TEXT,
                                      nfe_step=8, speed=1.0, cross_fade=0.15, remove_silence=False, seed=3,
                                      api_name="/synthesize")
    seen: set[str] = set()
    while not job.done():
        for unit in job.status().progress_data or []:
            seen.add(str(unit.desc))
        time.sleep(0.05)
    assert_valid_audio(job.result()[0])
    assert any(desc.startswith("Generating chunk") for desc in seen), seen


def test_a_stream_arrives_chunk_by_chunk(cluster):
    progress: list[str] = []
    arrivals, chunks = [], []
    for chunk in cluster.backend.synthesize_stream(synthesis(LONG_TEXT, nfe_step=16, seed=77),
                                                   lambda f, m: progress.append(m)):
        arrivals.append(time.monotonic())
        chunks.append(chunk)
    result = chunks[-1].result
    assert result is not None and all(chunk.result is None for chunk in chunks[:-1])
    assert [chunk.index for chunk in chunks] == list(range(result.chunks)) and result.chunks >= 4
    assert np.array_equal(np.concatenate([chunk.audio for chunk in chunks]), result.audio)
    assert arrivals[-1] - arrivals[0] > 0.3, "the chunks came as they were made, not all at the end"
    assert any(message.startswith("Generating chunk") for message in progress) and result.seed == 77


def test_engine_errors_on_a_worker_arrive_with_their_class_and_words(cluster):
    # This front-end believes the workers can transcribe; they cannot, and say so in the engine's words.
    believer = CeleryBackend(config=dataclasses.replace(cluster.backend.config, asr_model=str(REF_WAV.parent)))
    with pytest.raises(InputError) as info:
        believer.synthesize(synthesis("Hello there.", ref_text=""))
    assert str(info.value) == NO_ASR_MESSAGE
    # Refused at the front-end, before anything is sent: the same words as the local engine's.
    with pytest.raises(InputError, match="NFE steps must be between 4 and 64"):
        cluster.backend.synthesize_stream(synthesis("Hello there.", nfe_step=3))


def test_a_device_failure_on_a_worker_is_served_from_its_cpu(cluster):
    cluster.fault_trigger.touch()
    client = cluster.app.client()
    for attempt in range(8):  # idle workers take turns: the fault worker (w2) gets one of the first two
        audio, details, _ = api_synthesize(client, f"Fault test number {attempt}.", seed=5)
        assert_valid_audio(audio)
        if "CPU fallback" in details:
            break
    else:
        pytest.fail("no request fell back to the CPU")
    assert not cluster.fault_trigger.exists()
    status = cluster.workers["w2"].heartbeat(cluster.redis.client())["status"]
    assert status["fallbacks"] == 1 and "CPU fallback" in status["last_error"]
    assert cluster.workers["w1"].heartbeat(cluster.redis.client())["status"]["fallbacks"] == 0


@pytest.mark.browser
def test_the_page_streams_and_lists_the_workers(cluster, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(cluster.app.url, wait_until="domcontentloaded")
    page.locator("#generate-btn").wait_for(state="visible", timeout=60_000)
    page.locator("#ref-audio input[type=file]").set_input_files(str(REF_WAV))
    page.locator("#ref-audio audio").first.wait_for(state="attached", timeout=20_000)
    page.locator("#ref-text textarea").fill(REF_TEXT)
    page.locator("#gen-text textarea").fill(LONG_TEXT)
    page.locator("#generate-btn").click()
    page.locator("#out-audio a[data-testid=download-link]").wait_for(timeout=120_000)
    details = page.locator("#details").inner_text()
    assert "ran on cpu" in details and "chunks" in details, details
    assert page.locator("#live-audio audio").count() == 1, "the live player got the stream"
    panel = page.locator("#engine-status").inner_text().lower()  # the labels are upper-cased by CSS
    assert "worker w1@" in panel and "worker w2@" in panel and "queue" in panel, panel
    assert errors == [], errors
    context.close()


def test_the_broker_restarts_while_idle_and_the_next_request_is_served(cluster):
    cluster.redis.restart()
    audio, details, seed = api_synthesize(cluster.app.client(), "Served after the broker came back.", seed=9)
    assert_valid_audio(audio) is not None and seed == 9
    client = cluster.redis.client()
    deadline = time.monotonic() + 30
    while not all(worker.heartbeat(client) for worker in cluster.workers.values()):
        assert time.monotonic() < deadline, "a worker did not come back after the broker restart"
        time.sleep(0.2)


def test_a_worker_killed_mid_request_has_it_served_once_by_the_other(cluster):
    request = synthesis(LONG_TEXT, nfe_step=16, seed=2024)
    clean = list(cluster.backend.synthesize_stream(request))[-1].result
    ids_before = served_ids(cluster)
    client = cluster.redis.client()
    stream = cluster.backend.synthesize_stream(request)
    chunks = [next(stream)]  # the first chunk is out: the request is half-way through
    claims = [client.get(key).decode() for key in client.scan_iter(match="f5:claim:*")]
    assert len(claims) == 1, claims
    owner_pid = int(claims[0].split()[1])
    victim = next(worker for worker in cluster.workers.values() if worker.process.pid == owner_pid)
    survivor = next(worker for worker in cluster.workers.values() if worker is not victim)
    others: list = []
    threads = [threading.Thread(target=lambda i=i: others.append(
        api_synthesize(cluster.app.client(), f"Sent while a worker dies, number {i}.", seed=i))) for i in range(3)]
    for thread in threads:
        thread.start()
    victim.kill()
    chunks += list(stream)
    for thread in threads:
        thread.join(timeout=120)
    result = chunks[-1].result
    assert np.array_equal(result.audio, clean.audio), "the rerun made the same audio from the same seed"
    assert np.array_equal(np.concatenate([chunk.audio for chunk in chunks]), result.audio), "no chunk twice or lost"
    assert len(others) == 3 and all(assert_valid_audio(audio) is not None for audio, _, _ in others)
    new = served_ids(cluster)[len(ids_before):]
    assert len(new) == len(set(new)) == 4, new  # every request served exactly once
    assert re.search(r"request \w+: ok \(attempt 2\)", survivor.log_text())
    deadline = time.monotonic() + 30
    while victim.heartbeat(client) is not None:  # a dead worker leaves the list by itself
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert [w["name"] for w in cluster.app.client().predict(api_name="/status")["workers"]] == [survivor.name]
