"""A 10-minute video is never decoded whole into memory.

Each read runs in a child process that reports how far its peak resident memory
rose above what it held before the read: the kernel's high-water mark (VmHWM) is reset
just before the read, so neither the imports nor the parent's memory (which
ru_maxrss inherits across fork and exec: a test run that has loaded torch holds GBs)
count. Decoding the whole video into
memory would take about 15000 x 170 x 128 x 3 bytes, close to 1 GB; a bounded read
needs the clips and one frame at a time.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import tracemalloc

import pytest

from decoding.video import probe
from tests.support.videos import write_tiny_frames

MINUTES, FPS = 10, 25
FRAMES = MINUTES * 60 * FPS
BOUND = 150 * 2**20  # bytes of growth allowed: well under the ~1 GB of a whole decode

CHILD = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    from decoding import opencv, pyav
    from decoding.frames import ClipSink
    from decoding.video import clip_starts, probe, read_clips

    def rss():
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def peak():
        with open("/proc/self/status") as status:
            line = next(x for x in status if x.startswith("VmHWM:"))
        return int(line.split()[1]) * 1024

    path, how = sys.argv[1], sys.argv[2]
    info = probe(path)
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # the peak restarts from the current resident size
    before = rss()
    if how == "clips":
        starts = clip_starts(info.frames, 16, 10)
        numbers = read_clips(path, starts, 16, info=info).shape[:2]
    else:
        # The front-to-back decoders, asked for the last clip: they pass every frame.
        ranks = np.arange(info.frames - 16, info.frames)[None, :]
        sink = ClipSink(ranks, (170, 128))
        if how == "opencv":
            decoded = opencv.read_forward(path, info.frames - 1, sink)
        else:
            decoded = pyav.read_forward(path, 0, info.frames - 1, sink, 0)
        numbers = (decoded, len(sink.missing()))
    print(json.dumps({"growth": peak() - before, "result": list(numbers)}))
    """
)


@pytest.fixture(scope="module")
def ten_minutes(kit, tmp_path_factory):
    return kit.write_opencv(tmp_path_factory.mktemp("long") / "ten.mp4", FRAMES, "mp4v", fps=FPS)


def _run(path, how: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), how],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_reading_ten_clips_of_a_ten_minute_video_keeps_memory_bounded(ten_minutes):
    figures = _run(ten_minutes, "clips")
    assert figures["result"] == [10, 16]
    assert figures["growth"] < BOUND


def test_opencv_decoding_a_ten_minute_video_front_to_back_keeps_memory_bounded(ten_minutes):
    figures = _run(ten_minutes, "opencv")
    assert figures["result"] == [FRAMES, 0]
    assert figures["growth"] < BOUND


def test_pyav_decoding_a_ten_minute_video_front_to_back_keeps_memory_bounded(ten_minutes):
    figures = _run(ten_minutes, "pyav")
    assert figures["result"] == [FRAMES, 0]
    assert figures["growth"] < BOUND


# A frame's share of probe's peak: its int64 timestamp kept, and once more while the
# demux pass joins them; a Python int and list slot per frame (and a set of them) would
# be five times that.
INDEX_BYTES_A_FRAME = 40
MANY_FRAMES = 50_000


def test_probing_a_video_of_many_frames_peaks_at_a_few_bytes_a_frame(tmp_path):
    path = write_tiny_frames(tmp_path / "many.mkv", MANY_FRAMES)

    tracemalloc.start()
    try:
        info = probe(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert info.frames == MANY_FRAMES
    assert peak < INDEX_BYTES_A_FRAME * MANY_FRAMES
