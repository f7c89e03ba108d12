"""The ignore rules, name by name (no process needed)."""

from __future__ import annotations

from pathlib import PurePath

import pytest

from actiontag.settings import parse_extensions
from watcher.rules import IgnoreRules

TAKEN = [
    "clip.mp4",
    "CLIP.MP4",
    "Clip.Mkv",
    "a.b.c.webm",
    "sub/dir/x.avi",
    "with space.mov",
    "ünïcödé.m4v",
    "#1 & co.mpg",
    "-dash.ts",
    "cam.m2ts",
    "old.3gp",
    "web.ogv",
]
IGNORED = {
    ".hidden.mp4": "hidden",
    ".clip.mp4.Xy12Z9": "hidden",  # rsync
    "._clip.mp4": "hidden",  # macOS resource fork
    "clip.mp4.part": "temporary",
    "clip.mp4.partial": "temporary",
    "clip.mp4.crdownload": "temporary",
    "clip.mp4.download": "temporary",
    "clip.tmp": "temporary",
    "clip.TMP": "temporary",
    "clip.mp4.swp": "temporary",
    "clip.mp4~": "temporary",
    "~$clip.mp4": "temporary",
    "notes.txt": "not a video extension",
    "photo.JPG": "not a video extension",
    "README": "no extension",
    ".git/objects/ab.mp4": "hidden folder",
    "sub/.cache/clip.mp4": "hidden folder",
}


@pytest.mark.parametrize("name", TAKEN)
def test_video_names_are_taken(name: str) -> None:
    assert IgnoreRules().reason_to_ignore(PurePath(name)) is None


@pytest.mark.parametrize(("name", "why"), IGNORED.items())
def test_hidden_temporary_and_other_names_are_ignored_with_a_reason(name: str, why: str) -> None:
    ignored = IgnoreRules().reason_to_ignore(PurePath(name))
    assert ignored is not None and why in ignored.reason


def test_a_name_that_is_not_utf8_is_ignored_with_advice_to_rename() -> None:
    undecodable = b"caf\xe9.mp4".decode("utf-8", "surrogateescape")  # Latin-1 bytes on disk
    ignored = IgnoreRules().reason_to_ignore(PurePath(undecodable))
    assert ignored is not None and "rename" in ignored.reason


def test_the_extension_list_is_configurable_and_case_insensitive() -> None:
    rules = IgnoreRules(parse_extensions(" .MP4, mkv;webm "))
    assert rules.extensions == {"mp4", "mkv", "webm"}
    assert rules.reason_to_ignore(PurePath("x.Mp4")) is None
    assert rules.reason_to_ignore(PurePath("x.avi")) is not None


def test_an_empty_extension_list_is_refused() -> None:
    with pytest.raises(ValueError, match="no video extensions"):
        parse_extensions(" , ")
