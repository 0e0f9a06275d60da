"""HTTP to a Preflab server's REST API with a token: the client's only way in.

Standard library only, and no Django: the client runs on a laptop that can reach the API and
nothing else. Every failure becomes a ClientError whose message says what was wrong.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from http.client import HTTPResponse
from pathlib import Path
from typing import Any, BinaryIO
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

DEFAULT_URL = "http://127.0.0.1:8000"


class ClientError(Exception):
    """Something the user can put right, said in one message; the command exits non-zero."""


class ApiError(ClientError):
    """The API refused a request: its status, and the `detail` and `field` of its JSON error."""

    def __init__(self, status: int, detail: str, field: str | None = None):
        self.status, self.detail, self.field = status, detail, field
        super().__init__(f"HTTP {status}: {detail}" + (f" (field: {field})" if field else ""))


def error_of(reply: HTTPError) -> ApiError:
    """The API's {detail, field} from an error reply; a proxy's HTML page is cut to its first line."""
    raw = reply.read()
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if isinstance(body, dict) and "detail" in body:
        return ApiError(reply.code, str(body["detail"]), body.get("field"))
    text = raw.decode("utf-8", "replace").strip().splitlines()
    return ApiError(reply.code, text[0][:200] if text else reply.reason)


class MultipartFile:
    """A file as the multipart field `file`, read in pieces so a large import is never held in memory.

    `progress(n)` is told each piece's size in bytes, for an upload bar.
    """

    def __init__(self, path: Path, progress: Callable[[int], object] = lambda n: None):
        boundary = uuid.uuid4().hex
        self.content_type = f"multipart/form-data; boundary={boundary}"
        name = path.name.replace('"', "_")
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        self.file_size = path.stat().st_size
        self.length = len(head) + self.file_size + len(tail)
        self.path, self.head, self.tail, self.progress = path, head, tail, progress
        self.file: BinaryIO | None = None

    def read(self, size: int = -1) -> bytes:
        """The next piece of the body, b"" at its end (http.client reads until then, in blocks)."""
        if self.head:
            piece, self.head = self.head, b""
            return piece
        if self.file is None:
            self.file = self.path.open("rb")
        piece = b"" if self.file.closed else self.file.read(size)
        if piece:
            self.progress(len(piece))
            return piece
        self.file.close()
        piece, self.tail = self.tail, b""
        return piece


class Api:
    """One Preflab server: its base URL and the token sent with every request."""

    def __init__(self, url: str, token: str | None, *, timeout: float = 300.0):
        if not token:
            raise ClientError(
                "No API token: pass --token or set PREFLAB_TOKEN (`python manage.py drf_create_token <user>` makes one)."
            )
        self.url, self.token, self.timeout = url.rstrip("/"), token, timeout

    def open(
        self,
        method: str,
        path: str,
        *,
        params: dict | None = None,
        body: Any = None,
        data: Any = None,
        headers: dict | None = None,
    ) -> HTTPResponse:
        """Send one request to /api/v1/`path`; returns the open reply, or raises ClientError saying why.

        `body` is sent as JSON; `data` (bytes or a readable with a length in `headers`) as it is.
        """
        query = urlencode({k: v for k, v in (params or {}).items() if v is not None})
        url = f"{self.url}/api/v1/{path.strip('/')}/" + (f"?{query}" if query else "")
        headers = {"Authorization": f"Token {self.token}", "Accept": "application/json", **(headers or {})}
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = Request(url, data=data, method=method, headers=headers)
        try:
            return urlopen(request, timeout=self.timeout)
        except HTTPError as reply:
            raise error_of(reply) from None
        except (URLError, OSError) as exc:  # refused, unknown host, timed out
            reason = getattr(exc, "reason", exc)
            raise ClientError(
                f"Cannot reach the Preflab server at {self.url} ({reason}); is it running? Set --url or PREFLAB_URL."
            ) from None

    def call(self, method: str, path: str, **kwargs) -> Any:
        """A request whose answer is JSON (or empty): the decoded answer."""
        with self.open(method, path, **kwargs) as reply:
            raw = reply.read()
        return json.loads(raw) if raw else None


def api_from_env(url: str | None, token: str | None, timeout: float) -> Api:
    """The server named on the command line, else by PREFLAB_URL and PREFLAB_TOKEN."""
    return Api(url or os.environ.get("PREFLAB_URL") or DEFAULT_URL, token or os.environ.get("PREFLAB_TOKEN"), timeout=timeout)
