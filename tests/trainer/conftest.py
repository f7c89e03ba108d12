"""Fixtures for the trainer tests.

Helper modules sit beside this file. pytest's importlib import mode does not put this
folder on sys.path, so they are loaded by path here and handed to tests as fixtures.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.support.modules import load_helper

HERE = Path(__file__).parent
FIXTURES = HERE.parent / "fixtures"


def _load_helper(name: str) -> ModuleType:
    return load_helper(HERE, "_trainer_test_helpers", name)


http_server = _load_helper("http_server")
rar4_writer = _load_helper("rar4_writer")
rar5_writer = _load_helper("rar5_writer")
hmdb51_archives = _load_helper("hmdb51_archives")
ucf101_archives = _load_helper("ucf101_archives")


@pytest.fixture
def file_server() -> Iterator[http_server.FileServer]:
    """A local HTTP server (127.0.0.1) serving `file_server.files`, with fault modes."""
    with http_server.FileServer() as server:
        yield server


@pytest.fixture
def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens."""
    return http_server.closed_port_url()


@pytest.fixture
def rar4() -> ModuleType:
    """The test RAR 4.x (store method) writer: rar4.write_rar4(path, [rar4.Entry(...)])."""
    return rar4_writer


@pytest.fixture
def rar5() -> ModuleType:
    """The test RAR 5 (store method) writer: rar5.write_rar5(path, [rar5.Entry(...)])."""
    return rar5_writer


@pytest.fixture
def hmdb51_like() -> ModuleType:
    """Builders of HMDB51-shaped archives (nested RARs of real encoded videos)."""
    return hmdb51_archives


@pytest.fixture(scope="session")
def ucf101_like() -> ModuleType:
    """Builders of UCF101-shaped archives (a RAR of real videos, a zip of CRLF split files)."""
    return ucf101_archives


@pytest.fixture
def rar_fixtures() -> Path:
    """Archives made by real RAR software (see tests/fixtures/rar/README.md)."""
    return FIXTURES / "rar"


@pytest.fixture
def split_fixtures() -> Path:
    """Four official HMDB51 split files (see tests/fixtures/hmdb51_splits/README.md)."""
    return FIXTURES / "hmdb51_splits"
