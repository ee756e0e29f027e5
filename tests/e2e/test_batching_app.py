"""Batching on, through the real app: eight gradio_client clients at once are all served with valid
audio, passes are shared, and the engine panel shows the batch size in use."""

from __future__ import annotations

import concurrent.futures

import pytest

from engine.status import EngineStatus
from studio.ui import formatting as ui_format
from tests.app_process import launch_app

from .conftest import GEN_TEXT, REF_TEXT, REF_WAV, assert_valid_audio

CLIENTS = 8


@pytest.fixture(scope="module")
def batching_app(smoke_model_dir, tmp_path_factory):
    with launch_app(tmp_path_factory.mktemp("batching"), smoke_model_dir, "batching",
                    F5_MAX_BATCH="4", F5_BATCH_WAIT_MS="50", F5_IDLE_UNLOAD_S="600") as app:
        yield app


def test_eight_clients_at_once_are_all_served_in_shared_passes(batching_app):
    from gradio_client import handle_file

    def one(i: int):
        client = batching_app.client()
        return client.predict(ref_audio=handle_file(str(REF_WAV)), ref_text=REF_TEXT,
                              gen_text=f"{GEN_TEXT} Client number {i} speaking.", nfe_step=4, speed=1.0,
                              cross_fade=0.15, remove_silence=False, seed=100 + i, api_name="/synthesize")

    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        outputs = list(pool.map(one, range(CLIENTS)))
    for audio_path, details, seed in outputs:
        assert_valid_audio(audio_path)
        assert "Seed" in details
    assert sorted(seed for _, _, seed in outputs) == [100 + i for i in range(CLIENTS)]
    status = batching_app.client().predict(api_name="/status")
    assert status["served"] == CLIENTS and status["failed"] == 0, status
    assert status["max_batch"] == 4 and status["batched_passes"] >= 1 and 2 <= status["peak_batch"] <= 4, status
    rows = dict(ui_format.status_rows(EngineStatus.from_dict(status)))  # what the engine panel shows
    assert rows["Batching"].startswith("up to 4 requests a pass · peak"), rows
