"""The sample files the demo drops into the inbox, and how it drops them.

- One clip per motion class of the demonstration model, from the generator of its
  training data with other random draws (``SYNTHETIC_SEED``), so clips it never saw.
- One longer video of those motions in a row (trainer.motion_videos.DEMO_TRUTH_PARTS: 14
  parts, 67 s, some joined by hard cuts, some continuous): the demo prints its timeline
  and segments.
- A few real videos from ``tests/fixtures/videos`` (see the README there): H.264, AV1
  (which OpenCV opens but cannot read, so the PyAV fallback decodes it) and a phone
  clip with a display rotation.
- Two files that are not videos: the zero-byte ``result.webm`` from the fixtures and a
  text file named ``.mp4``. The watcher records them like any file with a video
  extension; the worker fails their jobs with the reason.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from launcher.demo_recipe import demo_class_count
from storage.schema import JobState

if TYPE_CHECKING:
    from trainer.motion_videos import Agreement

# The demonstration model's training videos come from seed 0.
SYNTHETIC_SEED = 1
FIXTURES = Path("tests", "fixtures", "videos")
REAL_VIDEOS = (
    ("box.mp4", "real video: H.264, 640x480"),
    ("av1_video.mkv", "real video: AV1, decoded by the PyAV fallback"),
    ("fire2.mp4", "real video: phone clip, rotated 180 degrees"),
)
EMPTY_FILE = ("result.webm", "not a video: zero bytes")
TEXT_FILE = "not-a-video.mp4"
SEQUENCE = "motions-in-a-row.avi"


@dataclass(frozen=True)
class Sample:
    """A file to drop into the inbox under ``name``, and how its job should end."""

    name: str
    source: Path
    expect: JobState
    what: str
    motion: str | None = None  # the synthetic motion class it shows


def prepare_samples(folder: Path, repo: Path) -> list[Sample]:
    """Write the synthetic clips and the text file under ``folder``; every sample."""
    return [
        *_synthetic_samples(folder / "synthetic"),
        _sequence_sample(folder / SEQUENCE),
        *_fixture_samples(repo / FIXTURES, folder),
    ]


def _synthetic_samples(root: Path) -> list[Sample]:
    from trainer.motion_videos import SyntheticConfig, video_path, write_synthetic_dataset

    config = SyntheticConfig(
        num_classes=demo_class_count(), videos_per_class=2, seed=SYNTHETIC_SEED
    )
    write_synthetic_dataset(root, config, progress=False)
    return [
        Sample(
            f"motion-{name}.avi",
            video_path(root, config, label, 0),
            JobState.DONE,
            f"synthetic motion: {name.replace('_', ' ')}",
            motion=name,
        )
        for label, name in enumerate(config.classes)
    ]


def _sequence_sample(path: Path) -> Sample:
    from trainer.motion_videos import DEMO_TRUTH_PARTS, write_sequence

    if not path.is_file():  # the same seed renders the same frames: written once
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.part.avi")
        write_sequence(partial, DEMO_TRUTH_PARTS, fps=25.0, seed=SYNTHETIC_SEED)
        partial.replace(path)
    seconds = sum(part.seconds for part in DEMO_TRUTH_PARTS)
    return Sample(
        SEQUENCE,
        path,
        JobState.DONE,
        f"synthetic: {len(DEMO_TRUTH_PARTS)} motions in a row, {seconds:.0f} s (segments below)",
    )


def sequence_agreement(database_url: str, path: Path) -> Agreement:
    """How the segments stored for the longer sample at ``path`` match its truth."""
    from storage.db import open_database, session_scope
    from storage.queries.videos import video_detail
    from trainer.motion_videos import DEMO_TRUTH_PARTS, segment_agreement, sequence_truth

    truth = sequence_truth(DEMO_TRUTH_PARTS, fps=25.0)
    engine = open_database(database_url, migrate=False)
    try:
        with session_scope(engine) as session:
            detail = video_detail(session, str(path))
    finally:
        engine.dispose()
    (timeline,) = detail.timelines.values()
    return segment_agreement(timeline.segments, truth)


def demo_classes() -> list[str]:
    """The demonstration model's classes, in label order."""
    from trainer.motion_videos import motion_names

    return list(motion_names(demo_class_count()))


def _fixture_samples(fixtures: Path, folder: Path) -> list[Sample]:
    samples = [Sample(name, fixtures / name, JobState.DONE, what) for name, what in REAL_VIDEOS]
    name, what = EMPTY_FILE
    samples.append(Sample(name, fixtures / name, JobState.FAILED, what))
    missing = [str(sample.source) for sample in samples if not sample.source.is_file()]
    if missing:
        raise FileNotFoundError(
            f"the demo's sample videos are missing: {', '.join(missing)}. Run the demo from "
            "a complete checkout of the repository (they are committed under "
            f"{FIXTURES})."
        )
    text = folder / TEXT_FILE
    text.parent.mkdir(parents=True, exist_ok=True)
    text.write_text("This is a text file with a video's name; the worker says why it fails.\n")
    samples.append(Sample(TEXT_FILE, text, JobState.FAILED, "not a video: text named .mp4"))
    return samples


def drop(samples: Sequence[Sample], inbox: Path) -> list[Path]:
    """Copy each sample into ``inbox`` as a downloader would (hidden name, then rename),
    so the watcher never sees a half-written file; the paths they land at."""
    inbox.mkdir(parents=True, exist_ok=True)
    landed = []
    for sample in samples:
        target = inbox / sample.name
        partial = inbox / f".{sample.name}.part"
        shutil.copyfile(sample.source, partial)
        os.replace(partial, target)
        landed.append(target)
    return landed
