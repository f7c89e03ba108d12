"""A video's preview, made by the worker once the video's job is done: nothing when a
browser plays the file as it is, else a small H.264 MP4 in the previews folder under
the video's sha256 (decoding.playable decides, decoding.preview writes).

It runs after the job's result is committed, from the file the job verified (its open
descriptor), within ``ACTIONTAG_PREVIEW_TIME_LIMIT``: a preview never delays or changes
a job's result, and any failure is recorded in ``previews`` with its reason, logged,
and the worker goes on. A video whose preview is known (made and still on disk, or
playable as it is) is not looked at again when another model tags it.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from sqlalchemy.orm import Session

from actiontag.settings import Settings
from decoding.playable import browser_playability
from decoding.preview import write_preview
from storage.db import read_transaction, write_transaction
from storage.inputs import job_inputs
from storage.previews import PreviewRecord, preview_name, preview_of, record_preview
from storage.schema import PreviewState
from worker.video_file import OpenedVideo

log = logging.getLogger(__name__)


def make_preview(
    session: Session, settings: Settings, job_id: int, video: OpenedVideo
) -> PreviewState | None:
    """Make and record the preview of done job ``job_id``'s video (open as ``video``);
    what was recorded, None when nothing was (previews off, already known, or the
    database would not take it)."""
    if not settings.previews:
        return None
    try:
        with read_transaction(session):
            inputs = job_inputs(session, job_id)
            known = preview_of(session, inputs.video_id)
        if _still_good(known, settings.preview_dir):
            return None
        state, detail, sizes = _made(settings, inputs.video_sha256, video)
        with write_transaction(session):
            record_preview(session, inputs.video_id, state, detail, **sizes)
    except Exception as exc:  # the job is done: nothing here may undo or fail it
        session.rollback()
        log.warning("job %d: its video's preview was not recorded: %s", job_id, exc)
        return None
    if state is PreviewState.FAILED:
        log.warning("job %d: no preview of %r: %s", job_id, video.path, detail)
    elif state is PreviewState.MADE:
        log.info("job %d: preview of %r made (%s)", job_id, video.path, detail)
    return state


def _still_good(known: PreviewRecord | None, folder: Path) -> bool:
    if known is None or known.state is PreviewState.FAILED:
        return False
    return known.state is PreviewState.PLAYABLE or (folder / known.file_name).is_file()


def _made(
    settings: Settings, sha256: str, video: OpenedVideo
) -> tuple[PreviewState, str, dict[str, int | float]]:
    """(state, detail, sizes) of the preview of ``video``, written into the folder."""
    playability = browser_playability(video.decode_path)
    if playability.plays:
        return PreviewState.PLAYABLE, f"the browser plays it as it is: {playability.why}", {}
    folder = settings.preview_dir
    target = folder / preview_name(sha256)
    partial = folder / f".{sha256}.{secrets.token_hex(4)}.part.mp4"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        info = write_preview(video.decode_path, partial, time_limit=settings.preview_time_limit)
        changed = video.written_since_opened()
        if changed is not None:
            raise RuntimeError(changed)
        os.replace(partial, target)
    except Exception as exc:
        partial.unlink(missing_ok=True)
        return PreviewState.FAILED, f"{playability.why}; the preview failed: {exc}", {}
    sizes = {
        "width": info.width,
        "height": info.height,
        "duration": info.duration,
        "size": target.stat().st_size,
    }
    why = f"{playability.why}: H.264 {info.width}x{info.height}, {info.frames} frames"
    return PreviewState.MADE, why, sizes
