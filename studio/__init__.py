"""F5 Voice Studio's front-ends: the page, the Gradio API and the REST API, one folder per feature.

``clone/``, ``voices/``, ``dialogue/``, ``dubbing/``: each feature's domain code, handlers and tab;
``ui/``: the shared UI pieces (the page, the engine panel, formatting); ``rest/``: the
OpenAI-compatible API; ``backend/``: what they all talk to. Nothing here holds a model: every
request goes through the backend ``app.py`` makes and hands in.
"""
