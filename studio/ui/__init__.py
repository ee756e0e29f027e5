"""The shared UI pieces: the page that puts the tabs together (``page``), the engine panel,
formatting for the page (``formatting``), in-place problems and job clocks (``feedback``), the API tab."""
