"""The browser page: ``http://HOST:PORT/`` on the websocket's own port (``streamser live``).

The page (``streamser/web/``: ``index.html``, ``app.js``, ``style.css``; plain JavaScript, no
libraries, no CDN, no build step) draws the live trajectories, the arousal-valence plane and
the current label from the websocket stream of the same host and port. ``meta.json`` gives it
the label colours of the dashboard and the circumplex coordinates of :mod:`streamser.core.labels`.

:func:`http_response` maps a request path to ``(status, content type, body)`` for the websocket
server's HTTP hook (a plain GET, not an upgrade); the token check happens before it, so with
``--token`` the page is only served at ``/?token=...`` (and passes the token on).
"""

from __future__ import annotations

import json
from functools import cache
from http import HTTPStatus
from urllib.parse import urlsplit

from streamser.core.labels import CIRCUMPLEX
from streamser.resources import web_file

__all__ = ["CONTENT_SECURITY_POLICY", "http_response", "meta_json"]

_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}

CONTENT_SECURITY_POLICY = ("default-src 'self'; connect-src 'self' ws: wss:; "
                           "img-src 'self' data:; frame-ancestors 'none'")
"""Nothing but this server: no external script, style, font or connection."""


@cache
def meta_json() -> bytes:
    """Label colours (the dashboard's) and circumplex coordinates ``[valence, arousal]``."""
    from streamser.gui.theme import LABEL_COLORS, UNVOICED  # plain constants, no Qt

    return json.dumps({"colors": LABEL_COLORS, "unvoiced": UNVOICED,
                       "circumplex": {k: list(v) for k, v in CIRCUMPLEX.items()}}).encode()


def http_response(path: str) -> tuple[HTTPStatus, str, bytes]:
    """``(status, content type, body)`` for a GET of ``path`` (query string ignored)."""
    route = urlsplit(path).path
    if route == "/meta.json":
        return HTTPStatus.OK, "application/json", meta_json()
    known = _FILES.get(route)
    body = web_file(known[0]) if known else None
    if known is None or body is None:
        return (HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8",
                f"streamser: no page at {route}; open / for the live view, or connect a "
                "websocket client.\n".encode())
    return HTTPStatus.OK, known[1], body
