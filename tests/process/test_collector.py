"""actiontag.collector: the collector paused while a process sets up, then frozen."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from actiontag.collector import setting_up
from tests.support.collector import freeze_collected


class Node:
    """A gc-tracked object that can sit in a reference cycle."""

    def __init__(self) -> None:
        self.other: Node | None = None


def tracked(obj: object) -> bool:
    """Whether ``obj`` is in a generation the collector still walks (not frozen)."""
    return any(o is obj for o in gc.get_objects())


@pytest.fixture
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_the_collector_is_paused_while_setting_up_and_runs_again_after(collector_on: None) -> None:
    with setting_up():
        paused = not gc.isenabled()

    assert paused
    assert gc.isenabled()


def test_what_setting_up_made_and_kept_is_frozen(collector_on: None) -> None:
    with setting_up():
        kept = Node()

    assert not tracked(kept)


def test_garbage_made_while_setting_up_is_collected_not_frozen(collector_on: None) -> None:
    with setting_up():
        first, second = Node(), Node()
        first.other, second.other = second, first  # a cycle: only the collector frees it
        gone = weakref.ref(first)
        del first, second

    assert gone() is None


def test_a_collector_that_was_off_stays_off() -> None:
    was = gc.isenabled()
    gc.disable()
    try:
        with setting_up():
            pass
        assert not gc.isenabled()
    finally:
        if was:
            gc.enable()


def test_objects_made_after_setting_up_are_collected_as_usual(collector_on: None) -> None:
    with setting_up():
        pass
    later = Node()

    assert tracked(later)


def test_the_test_processes_freeze_what_exists_and_turn_the_collector_on() -> None:
    was = gc.isenabled()
    gc.disable()
    try:
        kept = Node()
        freeze_collected()
        assert gc.isenabled()
        assert not tracked(kept)
    finally:
        if not was:
            gc.disable()
