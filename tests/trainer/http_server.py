"""A small HTTP file server on 127.0.0.1 for download tests, with the faults to test.

It serves in-memory files with Range support (single `bytes=N-` / `bytes=N-M` ranges,
If-Range against its ETag, 416 past the end) and can misbehave on purpose:
- `cut_after`: the next `cuts` responses send their headers with the full length,
  then only cut_after body bytes, then drop the connection;
- `ignore_range`: answer every request 200 with the whole file, as some servers do.
Every request is recorded (path, Range, If-Range, status) for the tests to inspect,
and `on_request`, when set, is called with it before the answer is sent.
"""

from __future__ import annotations

import hashlib
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


@dataclass
class Request:
    path: str
    range: str | None
    if_range: str | None
    status: int = 0


@dataclass
class FileServer:
    files: dict[str, bytes] = field(default_factory=dict)
    cut_after: int = 0
    cuts: int = 0
    ignore_range: bool = False
    requests: list[Request] = field(default_factory=list)
    on_request: Callable[[Request], None] | None = None

    def __enter__(self) -> FileServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server._serve(self)

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep test output quiet

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"

    def etag(self, name: str) -> str:
        return '"' + hashlib.md5(self.files[name]).hexdigest() + '"'

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        name = handler.path.lstrip("/")
        request = Request(name, handler.headers.get("Range"), handler.headers.get("If-Range"))
        self.requests.append(request)
        if self.on_request:
            self.on_request(request)
        data = self.files.get(name)
        if data is None:
            request.status = 404
            handler.send_error(404)
            return
        start, end = 0, len(data) - 1
        status = 200
        wanted = _RANGE.match(request.range or "")
        fresh = request.if_range in (None, self.etag(name))
        if wanted and fresh and not self.ignore_range:
            start = int(wanted.group(1))
            if start >= len(data):
                request.status = 416
                handler.send_response(416)
                handler.send_header("Content-Range", f"bytes */{len(data)}")
                handler.send_header("Content-Length", "0")
                handler.end_headers()
                return
            if wanted.group(2):
                end = min(int(wanted.group(2)), end)
            status = 206
        body = data[start : end + 1]
        request.status = status
        handler.send_response(status)
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("ETag", self.etag(name))
        handler.send_header("Accept-Ranges", "bytes")
        if status == 206:
            handler.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        handler.end_headers()
        if self.cuts > 0:
            self.cuts -= 1
            handler.wfile.write(body[: self.cut_after])
            handler.wfile.flush()
            handler.connection.shutdown(socket.SHUT_RDWR)
            handler.close_connection = True
            return
        handler.wfile.write(body)


def closed_port_url() -> str:
    """An address on 127.0.0.1 where nothing listens: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
