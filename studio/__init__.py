"""UI-side helpers of F5 Voice Studio (formatting, settings, voices, streaming glue).

Nothing here holds a model: every request goes through ``engine.get_engine()`` in ``app.py``.
"""
