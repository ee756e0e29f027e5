"""Gradio refusals that reach API clients as ``{"error": null}``.

The page runs with ``show_error=False`` so that a raw exception (a path, a stack detail) never
reaches a client; ``gr.Error`` messages still do. But Gradio's own refusals are plain exceptions
(a file the caller did not upload is an ``InvalidPathError``), so API clients got ``"error": null``
and no clue. :func:`install` wraps ``gradio.utils.error_payload`` (and the name ``gradio.queueing``
imported): where Gradio would send no message, a fixed one by kind is sent, never the exception's
own text.
"""

from __future__ import annotations

import functools

NOT_UPLOADED = ("This file cannot be used: an API call may only name files uploaded to this server "
                "(POST /gradio_api/upload, or gradio_client's handle_file) or its bundled assets.")
INVALID = "The request was refused: its inputs are not valid for this endpoint ({kind})."
FAILED = "The server could not complete this request ({kind}); the server log has the details."


def refusal_message(error: BaseException) -> str:
    """A message for a client that says what kind of refusal this is, without the exception's text."""
    from gradio.exceptions import InvalidPathError

    kind = type(error).__name__
    if isinstance(error, InvalidPathError):
        return NOT_UPLOADED
    if isinstance(error, (ValueError, TypeError, KeyError)):
        return INVALID.format(kind=kind)
    return FAILED.format(kind=kind)


def install() -> None:
    """Wrap Gradio's error payload once (idempotent)."""
    import gradio.queueing as queueing
    import gradio.utils as utils

    original = utils.error_payload
    if getattr(original, "_f5_wrapped", False):
        return

    @functools.wraps(original)
    def error_payload(error, show_error):
        content = original(error, show_error)
        if content.get("error") is None and error is not None:
            content["error"] = refusal_message(error)
            content["visible"] = True
        return content

    error_payload._f5_wrapped = True
    utils.error_payload = error_payload
    queueing.error_payload = error_payload
