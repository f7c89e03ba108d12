"""Which stretches of a video to decode for a set of wanted frames.

A frame can only be decoded from the keyframe before it, so the work is counted in
frames decoded: a stretch starts at a keyframe and runs to the last wanted frame it
covers. A wanted frame joins the current stretch when reaching it by decoding on is
no more work than seeking to its own keyframe; otherwise it opens a new stretch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from decoding.index import FrameIndex

# What a seek costs, in decoded frames: the demuxer's jump, the flushed decoder and
# its threads refilling, as a seek and its first frame compare with the per-frame
# decode time (docs/benchmarks.md); rounded up, since decoding on is the path that
# never has to back off.
SEEK_COST_FRAMES = 16


@dataclass(frozen=True)
class Stretch:
    key_rank: int  # the keyframe decoding starts from
    first: int  # the first and last wanted frame numbers it covers
    last: int

    @property
    def cost(self) -> int:
        return self.last - self.key_rank + 1


def plan(wanted: np.ndarray, index: FrameIndex) -> list[Stretch]:
    """Stretches covering the sorted, distinct frame numbers ``wanted``."""
    stretches: list[Stretch] = []
    for rank in wanted.tolist():
        key = index.keyframe_at_or_before(rank)
        if stretches and key - stretches[-1].last <= SEEK_COST_FRAMES:
            previous = stretches[-1]
            stretches[-1] = Stretch(previous.key_rank, previous.first, rank)
        else:
            stretches.append(Stretch(key, rank, rank))
    return stretches


def seeking_pays(stretches: list[Stretch], last_wanted: int) -> bool:
    """Whether seeking saves at least half the work of decoding from the start."""
    planned = sum(s.cost for s in stretches) + SEEK_COST_FRAMES * len(stretches)
    return 2 * planned <= last_wanted + 1
