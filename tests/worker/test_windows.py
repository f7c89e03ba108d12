"""worker.predictor over a whole video: windows every ``window_every`` seconds, streamed
through the engine a chunk at a time, the video-level top-k as their mean, shot cuts
from the windows' own decode or a pass of their own, and the timeline."""

from __future__ import annotations

import tracemalloc
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import av
import cv2
import numpy as np
import pytest
import torch

from decoding.video import VideoError, probe
from model.checkpoint import load_checkpoint
from model.transform import VideoTransform
from tests.support.model import CLASSES, CONFIG
from tests.support.stack import NUM_CLIPS
from tests.support.videos import write_gap_video, write_tiny_frames, write_video
from trainer.motion_videos import Part, write_sequence
from worker import predictor as predictor_module
from worker.predictor import EagerEngine, EngineOutput, Predictor

FPS = 12


@pytest.fixture(scope="module")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 s of moving noise at 12 fps: 20 windows at one a second (the last 4-frame clip
    starts at 19.67 s), more than NUM_CLIPS."""
    path = tmp_path_factory.mktemp("long") / "long.avi"
    base = np.random.default_rng(7).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (64, 48))
    for i in range(20 * FPS):
        writer.write(np.roll(base, i, axis=1))
    writer.release()
    return path


@pytest.fixture(scope="module")
def shots_video(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """Four shots joined by hard cuts and one change of motion inside a shot, 10 fps."""
    path = tmp_path_factory.mktemp("shots") / "shots.avi"
    parts = [
        Part("pan_up", 5),
        Part("spin", 4),
        Part("still", 4, cut=False),
        Part("pan_sideways", 5),
        Part("shake", 4),
    ]
    truth = write_sequence(path, parts, fps=10.0, width=64, height=48, seed=3)
    return SimpleNamespace(path=path, truth=truth)


@pytest.fixture(scope="module")
def vfr_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 s at 20 fps, then 10 s at 5 fps, in one MPEG-4 stream with millisecond
    timestamps (as phones record when the light drops): its nominal rate, 250 frames over
    19.9 s, is right nowhere in it."""
    path = tmp_path_factory.mktemp("vfr") / "vfr.mkv"
    base = np.random.default_rng(11).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    times_s = [i / 20 for i in range(200)] + [10 + i / 5 for i in range(50)]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=20)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for i, time_s in enumerate(times_s):
            frame = av.VideoFrame.from_ndarray(np.roll(base, 2 * i, axis=1), format="rgb24")
            frame.pts, frame.time_base = round(time_s * 1000), Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def _predictor(checkpoint: Path, **kwargs) -> Predictor:
    kwargs.setdefault("num_clips", NUM_CLIPS)
    kwargs.setdefault("engine", "eager")
    return Predictor(checkpoint, device="cpu", top_k=3, **kwargs)


@pytest.fixture(scope="module")
def predictor(checkpoint: Path) -> Predictor:
    return _predictor(checkpoint)


def test_a_long_video_is_scored_on_a_window_every_second(predictor, long_video) -> None:
    result = predictor.predict(long_video)

    starts = [w.start_s for w in result.timeline.windows]
    assert result.num_clips == len(starts) == 20 > NUM_CLIPS
    assert np.diff(starts) == pytest.approx([1.0] * 19)
    assert starts[0] == 0.0


def test_windows_of_a_variable_frame_rate_video_keep_its_timestamps(predictor, vfr_video) -> None:
    windows = predictor.predict(vfr_video).timeline.windows

    # Placed by the nominal 12.6 fps, the windows would start at 13 different seconds.
    assert [w.start_s for w in windows] == pytest.approx(list(range(20)), abs=1e-3)
    # A 4-frame clip spans 0.2 s at 20 fps and 0.8 s at 5 fps.
    spans = [w.end_s - w.start_s for w in windows]
    assert spans == pytest.approx([0.2] * 10 + [0.8] * 10, abs=1e-3)


def test_the_video_top_k_is_the_mean_of_every_windows_softmax(
    predictor, long_video, checkpoint
) -> None:
    plan = predictor.plan(long_video)
    model = load_checkpoint(checkpoint).build_model("cpu")
    transform = VideoTransform.from_config(CONFIG)
    with torch.no_grad():
        logits, _ = model(
            transform.to_tensor(transform.read(probe(long_video), plan.windows.starts))
        )
    mean = torch.softmax(logits, dim=1).mean(dim=0)
    order = mean.argsort(descending=True)[:3].tolist()

    result = predictor.predict(long_video)

    assert [label for label, _ in result.top] == [CLASSES[i] for i in order]
    assert [c for _, c in result.top] == pytest.approx(mean[order].tolist(), rel=1e-5)


def test_windows_go_through_the_engine_a_chunk_at_a_time_with_the_same_result(
    checkpoint, long_video, monkeypatch
) -> None:
    small = _predictor(checkpoint, chunk=6)
    whole = _predictor(checkpoint, chunk=64)
    sizes: list[int] = []
    engine = small.engine
    monkeypatch.setattr(small, "engine", lambda batch: sizes.append(len(batch)) or engine(batch))

    streamed = small.predict(long_video)
    at_once = whole.predict(long_video)

    assert sizes == [6, 6, 6, 2]
    assert [label for label, _ in streamed.top] == [label for label, _ in at_once.top]
    assert [c for _, c in streamed.top] == pytest.approx([c for _, c in at_once.top], rel=1e-5)
    assert [w.label for w in streamed.timeline.windows] == [
        w.label for w in at_once.timeline.windows
    ]


def test_past_max_windows_a_video_gets_that_many_spread_over_all_of_it(
    checkpoint, long_video
) -> None:
    capped = _predictor(checkpoint, max_windows=NUM_CLIPS + 1)
    last_start = (20 * FPS - CONFIG.clip_len * CONFIG.frame_stride) / FPS

    result = capped.predict(long_video)

    starts = [w.start_s for w in result.timeline.windows]
    assert result.num_clips == len(starts) == NUM_CLIPS + 1
    assert starts[0] == 0.0
    assert starts[-1] == pytest.approx(last_start, abs=1 / FPS)


def test_max_windows_below_num_clips_is_refused(checkpoint) -> None:
    with pytest.raises(ValueError, match=r"max_windows .* at least num_clips"):
        _predictor(checkpoint, max_windows=NUM_CLIPS - 1)


def test_the_strip_keeps_num_clips_thumbnails_spread_over_a_long_video(
    predictor, long_video
) -> None:
    result = predictor.predict(long_video)

    assert len(result.thumbnails) == NUM_CLIPS
    for jpeg in result.thumbnails:
        assert cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR) is not None


def test_shot_cuts_come_from_the_windows_own_decode_when_it_runs_front_to_back(
    predictor, shots_video, monkeypatch
) -> None:
    def second_pass(*args, **kwargs):
        raise AssertionError("a front-to-back decode must feed the shot detector")

    monkeypatch.setattr(predictor_module, "detect_boundaries_in_file", second_pass)
    assert predictor.plan(shots_video.path).sequential

    cuts = [c.start_s for c in predictor.predict(shots_video.path).timeline.cuts]

    assert cuts == pytest.approx(shots_video.truth.cuts_s, abs=0.101)


def test_sparse_windows_reached_by_seeking_get_the_same_cuts_from_a_pass_of_their_own(
    checkpoint, shots_video
) -> None:
    sparse = _predictor(checkpoint, window_every=5.0, num_clips=2)
    assert not sparse.plan(shots_video.path).sequential

    cuts = [c.start_s for c in sparse.predict(shots_video.path).timeline.cuts]

    assert cuts == pytest.approx(shots_video.truth.cuts_s, abs=0.101)


def test_a_short_video_has_one_window_per_evaluation_clip_start(predictor, tmp_path) -> None:
    # 9 frames, 4-frame clips: 6 evaluation clips start at 6 distinct frames or fewer.
    path = write_video(tmp_path / "short.avi", seed=2, frames=9)
    plan = predictor.plan(path)

    result = predictor.predict(path)

    assert result.num_clips == NUM_CLIPS
    assert [w.start_s for w in result.timeline.windows] == sorted(set(plan.windows.start_s))


def test_a_one_frame_video_gets_one_window_as_long_as_its_frame(predictor, tmp_path) -> None:
    path = write_video(tmp_path / "one.avi", seed=3, frames=1)

    result = predictor.predict(path)

    [window] = result.timeline.windows
    assert (window.start_s, window.end_s) == pytest.approx((0.0, 1 / 12))
    assert result.info.duration == pytest.approx(1 / 12)


@pytest.fixture(scope="module")
def gap_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 s, then a 10-hour jump of its timestamps, then 32 s: 40 s of frames."""
    return write_gap_video(tmp_path_factory.mktemp("gap") / "gap.mkv", 8.0, GAP_HOURS, 32.0)


GAP_HOURS = 10 * 3600.0


def test_windows_of_a_video_with_a_timestamp_gap_go_a_second_apart_where_its_frames_are(
    predictor, gap_video
) -> None:
    windows = predictor.predict(gap_video).timeline.windows

    after = 8.0 + GAP_HOURS
    assert [w.start_s for w in windows] == pytest.approx(
        list(range(8)) + [after + k for k in range(32)], abs=1e-3
    )
    assert all(w.end_s <= 8.0 or w.start_s >= after for w in windows)


class _SureOfTheFirstClass(EagerEngine):
    """Every window is the first class, at probability 0.9."""

    name = "sure"

    def __call__(self, batch: torch.Tensor) -> EngineOutput:
        out = super().__call__(batch)
        probs = torch.full_like(out.probs, 0.1 / (out.probs.shape[1] - 1))
        probs[:, 0] = 0.9
        return EngineOutput(probs, out.gates, out.indices)


def test_no_segment_of_a_video_with_a_timestamp_gap_covers_the_gap(
    checkpoint, gap_video, monkeypatch
) -> None:
    monkeypatch.setitem(predictor_module.ENGINES, "sure", _SureOfTheFirstClass)
    sure = _predictor(checkpoint, engine="sure")

    segments = sure.predict(gap_video).timeline.segments

    assert [(s.label, s.start_s, s.end_s) for s in segments] == [
        (CLASSES[0], 0.0, pytest.approx(8.0, abs=1e-3)),
        (CLASSES[0], pytest.approx(8.0 + GAP_HOURS), pytest.approx(40.0 + GAP_HOURS, abs=1e-3)),
    ]


def test_planning_the_windows_of_a_video_of_many_frames_keeps_no_float_a_frame(
    predictor, tmp_path
) -> None:
    frames = 50_000
    path = write_tiny_frames(tmp_path / "many.mkv", frames)

    tracemalloc.start()
    try:
        plan = predictor.plan(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert len(plan.windows) == 2000  # 2000 s at 25 fps, one a second
    # The index's timestamps (8 bytes a frame, twice while they are joined) and nothing
    # more per frame: a float a frame for the times, and one for their differences,
    # would take it past 32.
    assert peak < 32 * frames


def test_a_video_of_more_frames_than_max_frames_is_refused_naming_the_setting(
    checkpoint, tmp_path
) -> None:
    path = write_tiny_frames(tmp_path / "many.mkv", 300)
    capped = _predictor(checkpoint, max_frames=200)

    with pytest.raises(VideoError, match=r"more than 200 frames.*ACTIONTAG_MAX_FRAMES"):
        capped.plan(path)
