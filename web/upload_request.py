"""An upload request from start to end: stream, place, count (for the form and the API)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import anyio.to_thread
from fastapi import HTTPException, Request

from storage.db import DatabaseUnavailable, write_transaction
from storage.ingest import record_upload_name
from storage.queries.videos import video_id_of
from web.context import WebContext
from web.upload_stream import (
    ReceivedFile,
    ReceivedForm,
    UploadRefused,
    discard,
    inbox_write_error,
    place,
    receive,
)

log = logging.getLogger(__name__)


async def accept_upload(
    request: Request,
    context: WebContext,
    *,
    check_fields: Callable[[dict[str, str]], None] | None = None,
) -> list[ReceivedFile]:
    """The request's files, each placed in the inbox, found a duplicate, or refused.

    ``check_fields``: called with the form's other fields (the CSRF token) once the
    body is in, before anything is placed; what it raises discards the files. Raises
    HTTPException for the whole request: the refusal's status (400, 408, 413, 415) for
    the client's faults, 503 (the database or the inbox), 507 (no room) and 500 for the
    server's, which are logged too. No staging file outlives a refusal.
    """
    try:
        form, inbox_fd = await receive(
            request,
            inbox=context.settings.inbox,
            max_bytes=context.settings.upload_max_bytes,
            extensions=context.settings.video_extensions,
            idle_timeout_s=context.settings.upload_idle_timeout,
            uploads=context.uploads,
        )
        if check_fields is not None:
            try:
                check_fields(form.fields)
            except BaseException:
                discard(form, inbox_fd, context.uploads)
                raise
        if not form.files:
            discard(form, inbox_fd, context.uploads)
            raise UploadRefused(
                400, "the upload holds no file: send one or more in the field 'file'"
            )
        await _place(form, inbox_fd, context)
    except UploadRefused as refused:
        context.metrics.uploads.labels("refused").inc()
        if refused.status >= 500:
            _log_server_fault(refused)
        headers = {"Connection": "close"} if refused.close else None
        raise HTTPException(refused.status, str(refused), headers=headers) from None
    _count_and_log(form, context)
    return form.files


async def _place(form: ReceivedForm, inbox_fd: int, context: WebContext) -> None:
    """:func:`web.upload_stream.place` off the event loop, its failures as refusals."""

    def known(sha256: str) -> int | None:
        with context.session() as session:
            return video_id_of(session, sha256)

    def name_upload(sha256: str, name: str) -> None:
        with context.session() as session, write_transaction(session):
            record_upload_name(session, sha256, name)

    try:
        await anyio.to_thread.run_sync(place, form, inbox_fd, known, context.uploads, name_upload)
    except DatabaseUnavailable as exc:
        raise UploadRefused(
            503,
            "the upload is not kept: the database is unavailable. Send it again once it "
            "is back; /healthz says what is down.",
        ) from exc
    except OSError as exc:
        raise inbox_write_error(exc, context.settings.inbox) from exc


def _log_server_fault(refused: UploadRefused) -> None:
    # The database's reason names its address: for the operator's log, not the answer.
    cause = refused.__cause__
    reason = f" ({cause})" if isinstance(cause, DatabaseUnavailable) else ""
    log.error("upload refused with %d: %s%s", refused.status, refused, reason)


def _count_and_log(form: ReceivedForm, context: WebContext) -> None:
    for received in form.files:
        outcome = (
            "refused"
            if received.refused
            else "duplicate"
            if received.duplicate_of is not None or received.same_as is not None
            else "placed"
        )
        context.metrics.uploads.labels(outcome).inc()
        # The user's name goes through the log formatter's escaping like any file name.
        log.info(
            "upload %s: %r, %d bytes%s",
            outcome,
            received.display_name,
            received.size,
            f" -> {received.stored_name}"
            if received.stored_name
            else f" (video {received.duplicate_of})"
            if received.duplicate_of is not None
            else f" (placed as {received.same_as})"
            if received.same_as is not None
            else f": {received.refused}",
        )
