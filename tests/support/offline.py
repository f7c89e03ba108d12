"""No network for torch.hub: an empty TORCH_HOME, and every HTTP(S) request sent to a
closed local port, so that "the weights cannot be had" holds on a machine that has a
network too."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest


def offline_torch_home(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make ``folder`` the (empty) TORCH_HOME and send every proxied request nowhere;
    the folder torch.hub keeps weights files in (it does not exist yet)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    for name in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(name, closed)
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(folder))
    return folder / "hub" / "checkpoints"
