"""Rendering a template with what every page needs (the CSRF token, its cookie)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from web import security, views
from web.context import WebContext


def render(
    request: Request, context: WebContext, name: str, values: dict[str, Any], status: int = 200
) -> Response:
    """A template with what every page needs: the CSRF token (its cookie set when new),
    whether a token is asked, the helpers of :mod:`web.views`."""
    csrf, new = security.csrf_token(request)
    response = context.templates.TemplateResponse(
        request,
        name,
        {
            **values,
            "csrf": csrf,
            "csrf_field": security.CSRF_FIELD,
            "token_asked": context.settings.web_token is not None,
            # A token is asked and this browser holds a session: it may sign out.
            "session": context.settings.web_token is not None
            and security.signed_in(request, context.settings),
            "v": views,
        },
        status_code=status,
    )
    if new:
        response.set_cookie(
            security.CSRF_COOKIE,
            csrf,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
    return response
