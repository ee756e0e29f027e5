"""The A/B tab's real app: one `python app.py` on the tiny model for the package's end-to-end tests."""

from __future__ import annotations

import pytest

from tests.app_process import App, launch_app
from tests.e2e.conftest import browser, private_tempdir  # noqa: F401  (the e2e suite's fixtures)


@pytest.fixture(scope="package")
def compare_app(smoke_model_dir, tmp_path_factory) -> App:
    """The app with NFE 4 by default and F5_MAX_BATCH=2, so the two variants of a comparison (one
    model, run at once) may be sampled together."""
    with launch_app(tmp_path_factory.mktemp("compare_app"), smoke_model_dir, "compare-app", F5_DEFAULT_NFE="4",
                    F5_MAX_BATCH="2", F5_IDLE_UNLOAD_S="600") as app:
        yield app
