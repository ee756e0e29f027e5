"""Dialogue: the script (``script``), the run under one lease (``runner``), the tab's handlers and
layout (``handlers``, ``tab``)."""
