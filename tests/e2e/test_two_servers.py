"""Two copies of the app on one machine, started at once with the same GRADIO_TEMP_DIR (as two
servers with the default settings would be): each keeps its own Gradio temp folder, so one stopping
(and cleaning up) never takes the other's cached example clips away."""

from __future__ import annotations

import concurrent.futures

from tests.app_process import launch_app


def example_clips(app) -> list:
    """The example voices' clips Gradio cached in the app's own temp folder."""
    return sorted(app.gradio_temp.rglob("voice_*.wav"))


def test_two_apps_at_once_keep_their_own_example_clips(smoke_model_dir, tmp_path):
    shared = tmp_path / "shared-gradio"
    starting = [launch_app(tmp_path / name, smoke_model_dir, f"two-servers-{name}", GRADIO_TEMP_DIR=str(shared))
                for name in ("first", "second")]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:  # both start at the same time
        first, second = pool.map(lambda starter: starter.__enter__(), starting)
    stopped = [False, False]
    try:
        assert first.gradio_temp != second.gradio_temp
        assert first.gradio_temp.parent == second.gradio_temp.parent == shared
        for app in (first, second):
            clips = example_clips(app)
            assert len(clips) == 2, clips  # the two bundled voices
            for clip in clips:
                code, body = app.http_get(f"gradio_api/file={clip}")
                assert code == 200 and body[:4] == b"RIFF", (app.url, clip, code)
        starting[0].__exit__(None, None, None)  # the first one stops and cleans up after itself
        stopped[0] = True
        assert not first.gradio_temp.exists(), "a stopped server removes its own temp folder"
        clips = example_clips(second)
        assert len(clips) == 2, "the other server's example clips are still there"
        for clip in clips:
            code, body = second.http_get(f"gradio_api/file={clip}")
            assert code == 200 and body[:4] == b"RIFF", (clip, code)
    finally:
        for done, starter in zip(stopped, starting):
            if not done:
                starter.__exit__(None, None, None)
