"""The web console, served by the cycles service under ``/console``.

Server-rendered HTML (no JavaScript, no template engine) over the same APIs a user
would call, with the user's own token. ``mount_console(app)`` adds the routes and the
handlers that turn "not signed in" into a redirect and "wrong role" into a 403 page.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.cycles.console.auth import COOKIE, ConsoleForbidden, SignInRequired, sign_in_url
from services.cycles.console.pages import router
from services.cycles.console.views import layout, notice

__all__ = ["mount_console", "router"]


def mount_console(app: FastAPI) -> None:
    """Add the console's routes and its sign-in and 403 handlers to ``app``."""
    app.include_router(router)

    @app.exception_handler(SignInRequired)
    async def _sign_in(_request: Request, exc: SignInRequired) -> Response:
        response = RedirectResponse(sign_in_url(exc.next_path, exc.reason), status_code=303)
        if exc.reason:
            response.delete_cookie(COOKIE, path="/console")
        return response

    @app.exception_handler(ConsoleForbidden)
    async def _forbidden(_request: Request, exc: ConsoleForbidden) -> Response:
        roles = ", ".join(sorted(exc.allowed))
        body = (
            notice(f"This page requires one of the roles {roles}; you are signed in as {exc.user.label}.", "error")
            + '<p><a href="/console">Back to the console</a> · sign in as someone else from the sign-in page.</p>'
        )
        html = layout(
            title="Not allowed", body=body, nav=[("Cycles", "/console/cycles")], who=exc.user.label, csrf=exc.user.csrf
        )
        return HTMLResponse(html, status_code=403)
