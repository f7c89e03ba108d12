"""What an upload form's POST found, kept a little while under a random key, so that
the browser is sent on to a page that shows it (POST-redirect-GET: a reload asks for
that page again, never sends the files again). Memory bounded: the oldest go first."""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict

from web.upload_stream import ReceivedFile

KEPT = 64


class UploadSummaries:
    def __init__(self, kept: int = KEPT) -> None:
        self._kept = kept
        self._found: OrderedDict[str, list[ReceivedFile]] = OrderedDict()
        self._lock = threading.Lock()

    def keep(self, files: list[ReceivedFile]) -> str:
        """Keep ``files``; the key to ask for them by."""
        key = secrets.token_urlsafe(16)
        with self._lock:
            self._found[key] = files
            while len(self._found) > self._kept:
                self._found.popitem(last=False)
        return key

    def get(self, key: str) -> list[ReceivedFile] | None:
        with self._lock:
            return self._found.get(key)
