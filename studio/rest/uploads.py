"""Gradio's upload route answers a multipart field that is not a file (no ``filename``) with a bare
500: its ``upload_fn`` raises ``TypeError("File is not an instance of GradioUploadFile")``. The
route already turns a ``MultiPartException`` into a 400 with its message, so :func:`install` wraps
``gradio.routes.upload_fn`` to raise that instead, with words a client can act on.
"""

from __future__ import annotations

import functools

NAMELESS_FIELD = ("Each upload field must be a file (its Content-Disposition needs a filename); "
                  "a plain form field was sent.")


def install() -> None:
    """Wrap gradio.routes.upload_fn once (idempotent)."""
    import gradio.routes as routes
    from starlette.formparsers import MultiPartException

    original = routes.upload_fn
    if getattr(original, "_f5_wrapped", False):
        return

    @functools.wraps(original)
    async def upload_fn(*args, **kwargs):
        try:
            return await original(*args, **kwargs)
        except TypeError as error:
            if "GradioUploadFile" not in str(error):
                raise
            raise MultiPartException(NAMELESS_FIELD) from None

    upload_fn._f5_wrapped = True
    routes.upload_fn = upload_fn
