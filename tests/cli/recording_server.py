"""A small real HTTP server in a thread that records each request and answers from a table.

For the client's requests to endpoints this checkout does not serve yet (the round loop's), and
for server replies the app never gives (a proxy's HTML error page).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict
    body: bytes


@dataclass
class RecordingServer:
    """`replies` maps (method, path) to (status, body) or (status, body, headers).

    A dict or list body is sent as JSON, bytes as they are (as an HTML page unless the headers say).
    """

    replies: dict = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)

    def start(self) -> str:
        recording = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                recording.requests.append(Recorded(self.command, self.path, dict(self.headers), self.rfile.read(length)))
                status, body, *extra = recording.replies.get((self.command, self.path), (404, {"detail": "not in the table"}))
                raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                headers = {"Content-Type": "text/html" if isinstance(body, bytes) else "application/json", **(extra or [{}])[0]}
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = answer

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
