"""Thumbnails: encoding frames to small JPEGs, and storing them with a job's results."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from actiontag.thumbnails import InvalidThumbnail, encode_thumbnails, jpeg_size
from storage import ingest, transitions
from storage.results import JobResult, complete_job
from storage.schema import Job, JobState, Model, Thumbnail

from .conftest import digest


def _frame(rows: int, cols: int, rgb: tuple[int, int, int]) -> np.ndarray:
    frame = np.empty((rows, cols, 3), np.uint8)
    frame[...] = rgb
    return frame


def _decode_rgb(data: bytes) -> np.ndarray:
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


# -- encode_thumbnails -----------------------------------------------------------------


def test_encoded_thumbnails_are_jpegs_scaled_to_the_height_keeping_the_aspect() -> None:
    thumbs = encode_thumbnails([_frame(240, 320, (0, 0, 0)), _frame(480, 270, (0, 0, 0))])
    assert [jpeg_size(t) for t in thumbs] == [(128, 96), (54, 96)]
    assert all(t.startswith(b"\xff\xd8\xff") for t in thumbs)


def test_encoding_keeps_rgb_colours_and_the_order_of_frames() -> None:
    thumbs = encode_thumbnails([_frame(120, 160, (220, 30, 30)), _frame(120, 160, (30, 30, 220))])
    red, blue = (_decode_rgb(t)[40, 60].astype(int) for t in thumbs)
    assert red[0] > 180 and red[2] < 70
    assert blue[2] > 180 and blue[0] < 70


def test_a_frame_smaller_than_the_height_is_not_enlarged() -> None:
    (thumb,) = encode_thumbnails([_frame(60, 80, (9, 9, 9))], height=96)
    assert jpeg_size(thumb) == (80, 60)


def test_strided_and_flipped_views_of_frames_encode() -> None:
    frames = np.zeros((2, 240, 640, 3), np.uint8)
    thumbs = encode_thumbnails([frames[0, :, ::2], frames[1, ::-1, :, ::-1]])
    assert [jpeg_size(t) for t in thumbs] == [(128, 96), (256, 96)]


def test_the_height_can_be_chosen() -> None:
    (thumb,) = encode_thumbnails([_frame(240, 320, (9, 9, 9))], height=48)
    assert jpeg_size(thumb) == (64, 48)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (np.zeros((10, 10, 3), np.float32), "uint8"),
        (np.zeros((10, 10), np.uint8), "H x W x 3"),
        (np.zeros((10, 10, 4), np.uint8), "H x W x 3"),
        (np.zeros((0, 10, 3), np.uint8), "H x W x 3"),
        ([[0, 0, 0]], "uint8 numpy array"),
    ],
    ids=["float", "grey", "rgba", "empty", "list"],
)
def test_encoding_refuses_what_is_not_an_rgb_uint8_frame(frame: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode_thumbnails([_frame(8, 8, (0, 0, 0)), frame])  # type: ignore[list-item]


# -- jpeg_size -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"GIF89a....", "not a JPEG"),
        (b"", "not a JPEG"),
        ("text", "must be JPEG bytes"),
        (b"\xff\xd8\xff" + b"\0" * (600 * 1024), "larger than"),
    ],
    ids=["gif", "empty", "str", "huge"],
)
def test_jpeg_size_refuses_what_is_not_a_small_jpeg(data: object, message: str) -> None:
    with pytest.raises(InvalidThumbnail, match=message):
        jpeg_size(data)  # type: ignore[arg-type]


def test_jpeg_size_refuses_a_truncated_jpeg() -> None:
    noise = np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    (thumb,) = encode_thumbnails([noise])
    with pytest.raises(InvalidThumbnail, match="damaged or truncated"):
        jpeg_size(thumb[: len(thumb) * 3 // 4])


# -- complete_job(thumbnails=...) --------------------------------------------------------

THUMBS = encode_thumbnails(
    [_frame(240, 320, (200, 0, 0)), _frame(240, 320, (0, 200, 0)), _frame(240, 320, (0, 0, 200))]
)


@pytest.fixture
def job_id(session: Session, model: Model) -> int:
    job = ingest.record_path(session, "/inbox/a.mp4", digest("a"), 100, model).job
    transitions.claim_job(session, job.id, "w1", max_attempts=3)
    return job.id


def _complete(session: Session, job_id: int, thumbnails: list[bytes] | None) -> bool:
    return complete_job(
        session,
        job_id,
        JobResult(
            predictions=[("run", 0.9)],
            expert_usage=[(1.0, 1)],
            video_meta={},
            decode_ms=1.0,
            inference_ms=2.0,
            thumbnails=thumbnails,
        ),
    )


def _stored(session: Session, job_id: int) -> list[tuple[int, bytes, int, int]]:
    rows = session.execute(
        select(Thumbnail.position, Thumbnail.jpeg, Thumbnail.width, Thumbnail.height)
        .where(Thumbnail.job_id == job_id)
        .order_by(Thumbnail.position)
    ).all()
    session.commit()
    return [tuple(row) for row in rows]


def test_complete_stores_thumbnails_in_order_with_their_size(session: Session, job_id: int) -> None:
    assert _complete(session, job_id, THUMBS)
    assert _stored(session, job_id) == [(i, t, 128, 96) for i, t in enumerate(THUMBS)]


def test_a_retry_replaces_thumbnails_an_interrupted_attempt_left(
    session: Session, job_id: int
) -> None:
    session.execute(
        insert(Thumbnail),
        [
            {"job_id": job_id, "position": p, "jpeg": THUMBS[0], "width": 128, "height": 96}
            for p in range(5)
        ],
    )
    session.commit()
    assert _complete(session, job_id, THUMBS[1:])
    assert _stored(session, job_id) == [(0, THUMBS[1], 128, 96), (1, THUMBS[2], 128, 96)]


def test_completing_a_done_job_again_keeps_its_thumbnails(session: Session, job_id: int) -> None:
    _complete(session, job_id, THUMBS)
    assert not _complete(session, job_id, THUMBS[:1])
    assert len(_stored(session, job_id)) == 3


def test_complete_without_thumbnails_stores_none(session: Session, job_id: int) -> None:
    assert _complete(session, job_id, None)
    assert _stored(session, job_id) == []


def test_a_damaged_thumbnail_is_refused_and_nothing_is_written(
    session: Session, job_id: int
) -> None:
    with pytest.raises(InvalidThumbnail, match=r"thumbnail 1: .*not a JPEG"):
        _complete(session, job_id, [THUMBS[0], b"not a jpeg"])
    assert _stored(session, job_id) == []
    job = session.get(Job, job_id, populate_existing=True)
    assert job is not None and job.state is JobState.RUNNING


def test_deleting_a_job_deletes_its_thumbnails(session: Session, job_id: int) -> None:
    _complete(session, job_id, THUMBS)
    job = session.get(Job, job_id)
    session.delete(job)
    session.commit()
    assert _stored(session, job_id) == []
