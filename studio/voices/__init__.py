"""Voices: the bundled voices (``bundled``), the library (``library``: SQLite + WAV clips), what a name
may be (``names``), the voices a job uses (``references``), the clip check on upload
(``reference_check``), the Voices tab's handlers and layout (``handlers``, ``tab``)."""
