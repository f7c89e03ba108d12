"""A program listening for the webhook: a real HTTP server on 127.0.0.1 that keeps every
post and answers the statuses a test gives it (tests/watcher)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Receiver:
    """What a program listening for the webhook got: each post's headers and body."""

    answers: list[int]  # the statuses of the first posts; 200 after them
    posts: list[tuple[dict[str, str], bytes, int]] = field(default_factory=list)
    url: str = ""

    def taken(self) -> list[dict[str, Any]]:
        """The events of the posts answered 200, in the order they came."""
        return [json.loads(body) for _, body, status in self.posts if status == 200]


@contextmanager
def receiving(answers: list[int]) -> Iterator[Receiver]:
    receiver = Receiver(list(answers))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status = receiver.answers.pop(0) if receiver.answers else 200
            receiver.posts.append((dict(self.headers), body, status))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/actiontag?key=hidden"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
