"""Running a command line's ``main`` in the test process, as its ``python -m`` would run it.

A subprocess costs ~0.6-1 s of CPU for the interpreter and imports; the tests that prove
what only a process shows (the entry point, the environment it starts with, piped
output) keep running one.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from unittest import mock


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def run_in_process(
    main: Callable[[Sequence[str]], int | None],
    argv: Sequence[str],
    *,
    env: dict[str, str],
    cwd: Path,
) -> CliResult:
    """``main(argv)`` with exactly ``env`` as the environment, in ``cwd``: its exit code
    and what it printed."""
    out, err = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        with (
            mock.patch.dict(os.environ, env, clear=True),
            contextlib.chdir(cwd),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            try:
                code = main(list(argv)) or 0
            except SystemExit as exc:  # argparse: --help, usage errors
                code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    finally:
        # The command set up logging for a process of its own: give the test's back.
        root.handlers[:], root.level = handlers, level
        logging.captureWarnings(False)
    return CliResult(code, out.getvalue(), err.getvalue())
