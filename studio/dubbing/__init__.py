"""Dubbing: subtitles (``subtitles``), fitting and placing cues under one lease (``runner``), the tab's
handlers and layout (``handlers``, ``tab``)."""
