"""The OpenAI-compatible speech API, served with the page by the same process and engine.

``server`` builds the one FastAPI app (the API under ``/v1`` and the Gradio page at ``/``);
``routes`` has the endpoints; ``speech`` turns a request into engine arguments and encoded pieces;
``encoding`` the formats; ``bodies`` the audio stream and SSE events; ``voices`` the voice catalog;
``auth`` the optional key; ``errors`` OpenAI's error shape; ``pump`` and ``body_limit`` the plumbing.
"""
