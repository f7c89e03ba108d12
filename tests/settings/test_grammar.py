"""One syntax for durations and one for sizes, whichever setting or command reads them;
names as records show them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from actiontag.settings import (
    MAX_DURATION,
    OutOfRange,
    format_duration,
    format_size,
    parse_bool,
    parse_duration,
    parse_size,
)
from actiontag.settings.grammar import parse_name


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30", timedelta(seconds=30)),
        ("0.3", timedelta(seconds=0.3)),
        ("500ms", timedelta(milliseconds=500)),
        ("2s", timedelta(seconds=2)),
        ("5m", timedelta(minutes=5)),
        ("1.5min", timedelta(minutes=1.5)),
        ("2h", timedelta(hours=2)),
        (" 1.5 H ", timedelta(hours=1.5)),
        ("7d", timedelta(days=7)),
        ("1w", timedelta(weeks=1)),
        ("0", timedelta(0)),
    ],
)
def test_a_duration_is_seconds_or_a_number_and_a_unit(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["99999999999999999999d", "1000000w", "9" * 400, "5201w"], ids=str.__len__
)
def test_a_duration_past_a_century_is_refused_saying_the_most(text: str) -> None:
    with pytest.raises(OutOfRange, match=r"too long a duration: at most 5200w"):
        parse_duration(text)


def test_the_longest_duration_is_taken() -> None:
    assert parse_duration("5200w") == MAX_DURATION


@pytest.mark.parametrize("text", ["1048577T", "9" * 400], ids=["1048577T", "400-digits"])
def test_a_size_past_an_exbibyte_is_refused_saying_the_most(text: str) -> None:
    with pytest.raises(OutOfRange, match=r"too large a size: at most 1048576T"):
        parse_size(text)


@pytest.mark.parametrize("text", ["soon", "-1", "5 days", "1e3", "2y", "", "m"])
def test_a_malformed_duration_is_refused_with_examples(text: str) -> None:
    with pytest.raises(ValueError, match=r"not a duration; .*500ms, 5m, 2h"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(seconds=30), "30s"),
        (timedelta(minutes=5), "5m"),
        (timedelta(hours=2), "2h"),
        (timedelta(days=7), "1w"),
        (timedelta(seconds=90), "90s"),
        (timedelta(milliseconds=250), "250ms"),
    ],
)
def test_a_duration_is_written_as_it_is_read(value: timedelta, text: str) -> None:
    assert format_duration(value) == text
    assert parse_duration(text) == value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4096", 4096),
        ("512K", 512 << 10),
        ("256M", 256 << 20),
        ("256 mib", 256 << 20),
        ("1.5GiB", 3 << 29),
        ("20G", 20 << 30),
        ("1TB", 1 << 40),
        ("0", 0),
    ],
)
def test_a_size_is_bytes_or_a_power_of_1024(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["big", "-1", "20 GB and more", "1P"])
def test_a_malformed_size_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a size"):
        parse_size(text)


def test_a_size_reads_in_binary_units_in_messages() -> None:
    assert [format_size(n) for n in (100, 256 << 20, 3 << 29)] == [
        "100 bytes",
        "256 MiB",
        "1.5 GiB",
    ]


@pytest.mark.parametrize(("text", "expected"), [("1", True), ("yes", True), ("0", False)])
def test_switches_read_one_and_zero(text: str, expected: bool) -> None:
    assert parse_bool(text) is expected


def test_a_malformed_switch_is_refused() -> None:
    with pytest.raises(ValueError, match="yes/no"):
        parse_bool("maybe")


def test_a_name_is_one_printable_line() -> None:
    assert parse_name("  Ana Lima ") == "Ana Lima"
    for bad in ("", "   ", "Ana\nfake line", "x" * 256):
        with pytest.raises(ValueError, match="printable characters on one line"):
            parse_name(bad)
