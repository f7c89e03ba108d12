"""Every file that cannot be read as a video raises VideoError, saying which and why."""

from __future__ import annotations

import pickle
import wave

import cv2
import numpy as np
import pytest

from decoding.video import VideoError, probe, read_clips
from model.transform import VideoTransform


def _empty(kit, fixture_video, tmp_path):
    return fixture_video("result.webm"), "empty"


def _mp4_cut_in_half(kit, fixture_video, tmp_path):
    # cv2's MP4 writer puts the index (moov) at the end: half a file has none.
    whole = kit.write_opencv(tmp_path / "whole.mp4", 40, "mp4v")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    return cut, "truncated"


def _avi_cut_to_its_first_bytes(kit, fixture_video, tmp_path):
    whole = kit.write_opencv(tmp_path / "whole.avi", 40, "MJPG")
    cut = tmp_path / "cut.avi"
    cut.write_bytes(whole.read_bytes()[:300])
    return cut, "truncated"


def _text_named_mp4(kit, fixture_video, tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("These are meeting notes, not a video.\n" * 20)
    return path, "not a video"


def _picture_named_mp4(kit, fixture_video, tmp_path):
    path = tmp_path / "photo.mp4"
    _, png = cv2.imencode(".png", kit.code_image(5))
    path.write_bytes(png.tobytes())
    return path, "still image"


def _mp3_with_cover_art(kit, fixture_video, tmp_path):
    return fixture_video("with-attached-pic.mp3"), "cover art"


def _wav_audio_only(kit, fixture_video, tmp_path):
    path = tmp_path / "speech.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes((np.sin(np.arange(8000) / 5) * 3000).astype("<i2").tobytes())
    return path, "audio only"


def _mp4_without_frames(kit, fixture_video, tmp_path):
    path = tmp_path / "nothing.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (160, 120))
    writer.release()
    return path, "no video stream"


def _missing(kit, fixture_video, tmp_path):
    return tmp_path / "gone.mp4", "does not exist"


def _directory(kit, fixture_video, tmp_path):
    path = tmp_path / "folder.mp4"
    path.mkdir()
    return path, "directory"


UNREADABLE = [
    _empty,
    _mp4_cut_in_half,
    _avi_cut_to_its_first_bytes,
    _text_named_mp4,
    _picture_named_mp4,
    _mp3_with_cover_art,
    _wav_audio_only,
    _mp4_without_frames,
    _missing,
    _directory,
]
IDS = [maker.__name__.strip("_") for maker in UNREADABLE]


@pytest.mark.parametrize("make", UNREADABLE, ids=IDS)
def test_probe_raises_video_error_naming_the_file_and_the_fault(make, kit, fixture_video, tmp_path):
    path, fault = make(kit, fixture_video, tmp_path)
    with pytest.raises(VideoError) as caught:
        probe(path)
    assert str(path) in str(caught.value)
    assert fault in str(caught.value)


@pytest.mark.parametrize("make", UNREADABLE, ids=IDS)
def test_read_clips_raises_video_error(make, kit, fixture_video, tmp_path):
    path, _ = make(kit, fixture_video, tmp_path)
    with pytest.raises(VideoError):
        read_clips(path, [0], 16)


def test_loading_clips_raises_video_error_for_cover_art(fixture_video):
    with pytest.raises(VideoError, match="cover art"):
        VideoTransform().load(fixture_video("with-attached-pic.mp3"), num_clips=1)


def test_video_error_survives_pickling_with_its_message(fixture_video):
    with pytest.raises(VideoError) as caught:
        probe(fixture_video("result.webm"))
    copy = pickle.loads(pickle.dumps(caught.value))
    assert type(copy) is VideoError
    assert (str(copy), copy.path, copy.reason) == (
        str(caught.value),
        caught.value.path,
        caught.value.reason,
    )
