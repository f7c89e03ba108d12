"""An upload request from start to end: stream, place, count (for the form and the API)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import anyio.to_thread
from fastapi import HTTPException, Request

from storage import query
from web.context import WebContext
from web.upload import ReceivedFile, UploadRefused, discard, place, receive

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
    HTTPException with the refusal's status (413, 415, 400) for the whole request.
    """
    settings = context.settings
    try:
        form, inbox_fd = await receive(
            request,
            inbox=settings.inbox,
            max_bytes=settings.upload_max_bytes,
            extensions=settings.video_extensions,
        )
    except UploadRefused as refused:
        context.metrics.uploads.labels("refused").inc()
        raise HTTPException(refused.status, str(refused)) from None
    if check_fields is not None:
        try:
            check_fields(form.fields)
        except BaseException:
            discard(form, inbox_fd)
            raise

    def known(sha256: str) -> int | None:
        with context.session() as session:
            return query.video_id_of(session, sha256)

    await anyio.to_thread.run_sync(place, form, inbox_fd, settings.video_extensions, known)
    for received in form.files:
        outcome = (
            "refused"
            if received.refused
            else "duplicate"
            if received.duplicate_of is not None
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
            else f": {received.refused}",
        )
    return form.files
