"""Raw HTTP against the app, below gradio_client: what a browser (or an attacker) can send.

* ``call``: the REST form of a named endpoint (``/gradio_api/call/NAME``), with any JSON data,
  including FileData that points wherever the caller likes.
* ``upload``: a multipart upload with any file name.
* ``raw_get``: a GET whose path is sent byte for byte (no client-side normalisation of ``..``).
* ``QueueStream``: the browser's queue protocol (join, server-sent events, cancel, disconnect),
  for the UI's private streaming event that gradio_client refuses to call.
"""

from __future__ import annotations

import http.client
import json
import secrets
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Iterator

#: The optional inputs /synthesize takes after the seed (quality_check, model), as the page sends them
#: by default: the raw HTTP API wants every input (gradio_client fills them in itself).
SYNTHESIZE_OPTIONAL = (False, "")


def file_data(path: str, name: str | None = None) -> dict[str, Any]:
    return {"path": path, "orig_name": name or path.rsplit("/", 1)[-1], "meta": {"_type": "gradio.FileData"}}


def _post_json(url: str, body: dict[str, Any], timeout: float = 30) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        text = error.read().decode("utf-8", "replace")
        try:
            return error.code, json.loads(text)
        except ValueError:
            return error.code, text


def call(base_url: str, api_name: str, data: list[Any], timeout: float = 120) -> tuple[str, Any]:
    """Call a named endpoint over REST. Returns ("complete", outputs), ("error", message) or
    ("http <code>", body) when the call is refused before it is queued."""
    code, body = _post_json(f"{base_url}gradio_api/call/{api_name}", {"data": data})
    if code != 200:
        return f"http {code}", body
    event_id = body["event_id"]
    with urllib.request.urlopen(f"{base_url}gradio_api/call/{api_name}/{event_id}", timeout=timeout) as response:
        event = None
        for raw in response:
            line = raw.decode("utf-8").rstrip("\n")
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                payload = line.split(":", 1)[1].strip()
                try:
                    value = json.loads(payload)
                except ValueError:
                    value = payload
                return event, value
    return "no result", None


def upload(base_url: str, filename: str, content: bytes, timeout: float = 60) -> tuple[int | str, Any]:
    """POST /gradio_api/upload with ``filename`` sent exactly as given; ("reset", why) when the
    server closes the connection before the body is sent."""
    boundary = "reliability" + secrets.token_hex(8)
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{filename}\"\r\n"
            f"Content-Type: audio/wav\r\n\r\n").encode()
    payload = head + content + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(base_url + "gradio_api/upload", data=payload, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")
    except (urllib.error.URLError, ConnectionError) as error:  # the server cut the upload short
        reason = getattr(error, "reason", error)
        if isinstance(reason, ConnectionError) or isinstance(error, ConnectionError):
            return "reset", str(reason)
        raise


def raw_get(base_url: str, raw_path: str, timeout: float = 10) -> tuple[int, bytes]:
    """GET ``raw_path`` without any normalisation (``..`` and encodings reach the server as typed)."""
    parsed = urllib.parse.urlsplit(base_url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)
    try:
        connection.putrequest("GET", raw_path, skip_accept_encoding=True)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def config(base_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(base_url + "config", timeout=30) as response:
        return json.loads(response.read())


def dependency_of(cfg: dict[str, Any], elem_id: str) -> tuple[int, int]:
    """(fn_index, trigger component id) of the event a button with ``elem_id`` triggers."""
    ids = {c["id"]: c.get("props", {}).get("elem_id") for c in cfg["components"]}
    for dep in cfg["dependencies"]:
        for target, _event in dep["targets"]:
            if target is not None and ids.get(target) == elem_id and dep.get("types", {}).get("generator"):
                return dep["id"], target
    raise LookupError(f"no generator event on #{elem_id}")


class QueueStream:
    """One queued event as the browser runs it: join, read its server-sent events, cancel or drop."""

    def __init__(self, base_url: str, fn_index: int, trigger_id: int, data: list[Any]):
        self.base_url = base_url
        self.fn_index = fn_index
        self.session_hash = secrets.token_hex(6)
        code, body = _post_json(f"{base_url}gradio_api/queue/join",
                                {"data": data, "event_data": None, "fn_index": fn_index,
                                 "trigger_id": trigger_id, "session_hash": self.session_hash})
        assert code == 200, (code, body)
        self.event_id = body["event_id"]
        self._response = urllib.request.urlopen(
            f"{base_url}gradio_api/queue/data?session_hash={self.session_hash}", timeout=300)

    def messages(self) -> Iterator[dict[str, Any]]:
        for raw in self._response:
            line = raw.decode("utf-8").strip()
            if line.startswith("data:"):
                message = json.loads(line[5:])
                yield message
                if message.get("msg") in ("process_completed", "close_stream"):
                    return

    def cancel(self) -> tuple[int, Any]:
        """What the Stop button does."""
        return _post_json(f"{self.base_url}gradio_api/cancel", {"session_hash": self.session_hash,
                                                                 "fn_index": self.fn_index,
                                                                 "event_id": self.event_id})

    def disconnect(self) -> None:
        """What closing the tab does: the event stream just goes away."""
        try:
            self._response.fp.raw._sock.close()  # type: ignore[attr-defined]
        except Exception:
            pass
        self._response.close()
