"""What the outside may see of a server message or status: server paths cut to their last part.

The page, the Gradio API and the REST API show these; the log keeps the full text for the operator.
"""

from __future__ import annotations

import dataclasses
import re

from engine.status import EngineStatus

_ABSOLUTE_PATH = re.compile(r"(?<![\w.~/])/(?:[^\s/'\"`,;:()]+/)+([^\s/'\"`,;:()]+)")

#: The status fields that carry free text (and so may carry server paths).
_STATUS_TEXT_FIELDS = ("last_error", "model")


def public_text(message: str) -> str:
    """``message`` with server paths cut to their last part ('/srv/models/x/model.pt' -> '…/model.pt')."""
    return _ABSOLUTE_PATH.sub(lambda m: "…/" + m.group(1), message)


def public_status(status: EngineStatus) -> EngineStatus:
    """``status`` fit to show (on the page or through an API): :func:`public_text` applied to its
    free-text fields."""
    cut = {key: public_text(getattr(status, key)) for key in _STATUS_TEXT_FIELDS
           if isinstance(getattr(status, key), str)}
    return dataclasses.replace(status, **cut)
