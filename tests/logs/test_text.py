"""escape_control: outside text (file names, labels, errors) made safe for one line."""

from __future__ import annotations

import pytest

from actiontag.text import escape_control, has_control


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("a\nb.mp4", "a\\nb.mp4"),
        ("a\rb", "a\\rb"),
        ("tab\there", "tab\\there"),
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("nul\x00", "nul\\x00"),
        ("del\x7f", "del\\x7f"),
        ("c1\x85\x9b", "c1\\x85\\x9b"),
        ("line\u2028para\u2029", "line\\u2028para\\u2029"),
        ("evil\u202egnp.mp4", "evil\\u202egnp.mp4"),
        ("iso\u2066late\u2069", "iso\\u2066late\\u2069"),
        ("mark\u200e\u200f\u061c", "mark\\u200e\\u200f\\u061c"),
        ("bom\ufeff", "bom\\ufeff"),
    ],
)
def test_control_characters_are_written_as_visible_escapes(raw: str, shown: str) -> None:
    assert escape_control(raw) == shown
    assert not has_control(escape_control(raw))


def test_ordinary_text_is_left_as_it_is() -> None:
    name = "/inbox/sub dir/plié #1 & more — 東京 ✓ C:\\clips\\a.mp4"
    assert escape_control(name) == name
    assert not has_control(name)


def test_escaping_twice_changes_nothing() -> None:
    once = escape_control("a\nb\x1b[2J\u202ec")
    assert escape_control(once) == once


def test_anything_is_escaped_through_str() -> None:
    assert escape_control(FileNotFoundError(2, "gone", "a\nb")) == ("[Errno 2] gone: 'a\\nb'")
    assert escape_control(ValueError("bad name x\ny")) == "bad name x\\ny"
