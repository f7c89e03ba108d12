"""``python -m tests.web.confined [--max-file-size BYTES] [--no-dac-override] -- ARGS…``:
``python -m web ARGS…`` with a limit set first, in the same process (by exec).

``--max-file-size``: RLIMIT_FSIZE, the disk full for every file it writes (Python ignores
SIGXFSZ, so a write past the limit fails with EFBIG). ``--no-dac-override``: run as root,
it meets folders' permissions as any user does (CAP_DAC_OVERRIDE and
CAP_DAC_READ_SEARCH leave its bounding set, so the exec'd process has neither).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import sys

PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE = 1
CAP_DAC_READ_SEARCH = 2


def drop_dac_override() -> None:
    if os.geteuid() != 0:
        return  # permissions apply already
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"prctl(PR_CAPBSET_DROP, {capability}): {os.strerror(error)}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.web.confined")
    parser.add_argument("--max-file-size", type=int)
    parser.add_argument("--no-dac-override", action="store_true")
    parser.add_argument("web_args", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if args.max_file_size is not None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (args.max_file_size, args.max_file_size))
    if args.no_dac_override:
        drop_dac_override()
    web_args = args.web_args[1:] if args.web_args[:1] == ["--"] else args.web_args
    os.execv(sys.executable, [sys.executable, "-m", "web", *web_args])


if __name__ == "__main__":
    main()
