"""Who may open the websocket stream: Origin allow-list, Host check, token (sans-I/O).

The stream is personal data (a live reading of someone's voice), and every web page a user visits
can open ``ws://127.0.0.1:8765``. Browsers always send ``Origin`` with a websocket handshake and
let a server refuse it; native clients send none. So by default :class:`AccessPolicy` accepts

- a handshake with **no** ``Origin`` (Python, curl, native apps);
- the page streamser serves itself (origin ``http://<the Host the request was sent to>``);
- ``http(s)://localhost``, ``127.0.0.1`` or ``[::1]`` on any port (a prototype's dev server);
- any origin named with ``--allow-origin`` (exactly, e.g. ``https://booth.example:8443``, or
  ``null`` for a page opened from a file — which every sandboxed frame of any site also sends);

and refuses every other origin, ``null`` included, with HTTP 403. ``Host`` must be an IP address,
``localhost``, this machine's name, or a host named in ``--allow-origin`` / ``--ws-host``, else
HTTP 421: that stops DNS rebinding (a hostile name that resolves to 127.0.0.1). The token
(``--token``, ``--token-file``, ``$STREAMSER_TOKEN``) is compared in constant time and accepted
as ``?token=`` or ``Authorization: Bearer`` (scheme in any case).

:class:`AccessPolicy` is pure (request fields in, a verdict out); :class:`Gate` applies it as the
websocket server's handshake hook, on the server's asyncio thread.
"""

from __future__ import annotations

import email.utils
import hmac
import ipaddress
import os
import socket
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from streamser.errors import ConfigError
from streamser.outputs.page import CONTENT_SECURITY_POLICY, http_response

__all__ = ["TOKEN_COOKIE", "TOKEN_ENV", "AccessPolicy", "Gate", "load_token", "normalise_origin"]

TOKEN_ENV = "STREAMSER_TOKEN"
TOKEN_COOKIE = "streamser_token"
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def normalise_origin(origin: str) -> str:
    """``Scheme://host[:port]`` in lower case, default ports dropped; ``null`` stays ``null``."""
    origin = origin.strip().lower().rstrip("/")
    if origin == "null":
        return origin
    parts = urlsplit(origin)
    try:
        port = parts.port
    except ValueError:
        return origin
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return f"{parts.scheme}://{host}" + ("" if port in (None, default) else f":{port}")


def _split_host(host: str) -> str:
    """The host name of a ``Host`` header value (port and IPv6 brackets removed), lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _own_names() -> frozenset[str]:
    names = {socket.gethostname().lower()}
    names |= {n + ".local" for n in list(names)}
    try:
        names.add(socket.getfqdn().lower())
    except OSError:
        pass
    return frozenset(names)


@dataclass(frozen=True)
class AccessPolicy:
    """Which origins, hosts and token the server accepts; see the module docstring."""

    allow_origins: tuple[str, ...] = ()
    bind_host: str = "127.0.0.1"
    token: str | None = None
    own_names: frozenset[str] = field(default_factory=_own_names)

    def origin_allowed(self, origin: str | None, host: str | None) -> bool:
        """True when a handshake with this ``Origin`` (None = header absent) may proceed."""
        if origin is None:
            return True
        normal = normalise_origin(origin)
        if normal in {normalise_origin(o) for o in self.allow_origins}:
            return True
        if normal == "null":
            return False
        parts = urlsplit(normal)
        if parts.scheme not in ("http", "https"):
            return False
        if (parts.hostname or "") in _LOOPBACK_NAMES:
            return True
        # the page streamser serves itself: same scheme-less authority as the request's Host
        return host is not None and normal == normalise_origin(f"http://{host}")

    def host_allowed(self, host: str | None) -> bool:
        """True when the ``Host`` header names this server and not a rebinding name."""
        if host is None:
            return True
        name = _split_host(host)
        if name in _LOOPBACK_NAMES or name.endswith(".localhost") or _is_ip(name):
            return True
        if name in self.own_names or name == self.bind_host.lower():
            return True
        return any(urlsplit(normalise_origin(o)).hostname == name for o in self.allow_origins)

    def token_matches(self, given: str) -> bool:
        """True when ``given`` is the token (constant-time compare; False with no token)."""
        return bool(self.token) and hmac.compare_digest(given.encode(), str(self.token).encode())

    def token_ok(self, path: str, authorization: str | None) -> bool:
        """True when no token is set, or the request carries it (constant-time compare)."""
        if not self.token:
            return True
        expected = self.token.encode()
        given = parse_qs(urlsplit(path).query).get("token", [""])[0].encode()
        if hmac.compare_digest(given, expected):
            return True
        scheme, _, credential = (authorization or "").strip().partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            credential.strip().encode(), expected)


def load_token(given: str | None, path: Path | None,
               environ: dict[str, str] | None = None) -> str | None:
    """The token from ``--token``, else ``--token-file`` (first line), else ``$STREAMSER_TOKEN``.

    Raises :class:`ConfigError` for an unreadable or empty token file.
    """
    if given:
        return given
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8").strip().splitlines()
        except OSError as exc:
            raise ConfigError(f"--token-file {path}: cannot read it ({exc.strerror}).") from None
        if not text or not text[0].strip():
            raise ConfigError(f"--token-file {path} is empty; put the token on its first line.")
        return text[0].strip()
    env = (environ if environ is not None else dict(os.environ)).get(TOKEN_ENV, "").strip()
    return env or None


class Gate:
    """The websocket server's ``process_request`` hook (asyncio thread): applies an
    :class:`AccessPolicy`, the connection cap, and serves the browser page for a plain GET.

    ``clients`` returns the number of connected clients; :attr:`max_clients` may be lowered
    before serving (open-file limit). Counts refusals by HTTP status in :attr:`refused`.
    """

    def __init__(self, policy: AccessPolicy, page: bool, clients: Callable[[], int],
                 max_clients: int = 1000) -> None:
        self.policy = policy
        self.page = page
        self._clients = clients
        self.max_clients = max_clients
        self.refused: dict[int, int] = {}
        self.pages_served = 0

    def _refuse(self, conn: ServerConnection, status: HTTPStatus, text: str) -> Response:
        self.refused[status.value] = self.refused.get(status.value, 0) + 1
        return conn.respond(status, f"streamser: {text}\n")

    def __call__(self, conn: ServerConnection, request: Request) -> Response | None:
        """The gate before the handshake (asyncio thread): Host, Origin, token (see
        :mod:`streamser.outputs.wsguard`), then the connection cap; a plain GET that is not a
        websocket upgrade gets the browser page (see :mod:`streamser.outputs.page`).

        With a token, a page request with ``?token=`` sets an HttpOnly same-site cookie, so the
        page's own files (and the browser's websocket) are authorised without the query."""
        headers = request.headers
        host = headers.get("Host")
        if not self.policy.host_allowed(host):
            return self._refuse(conn, HTTPStatus.MISDIRECTED_REQUEST,
                                f"Host {host!r} is not this server's name (DNS rebinding?); "
                                "connect to 127.0.0.1 or name the host with --allow-origin.")
        origin = headers.get("Origin")
        if not self.policy.origin_allowed(origin, host):
            return self._refuse(conn, HTTPStatus.FORBIDDEN,
                                f"origin {origin!r} may not read this stream; start streamser "
                                f"with --allow-origin {origin} to allow that page.")
        if not self._authorised(request):
            return self._refuse(conn, HTTPStatus.UNAUTHORIZED,
                                "missing or wrong token; connect with ?token=... or an "
                                "'Authorization: Bearer ...' header.")
        if headers.get("Upgrade", "").lower() != "websocket" and self.page:
            return self._page(request)
        if self._clients() >= self.max_clients:
            response = self._refuse(conn, HTTPStatus.SERVICE_UNAVAILABLE,
                                    f"{self.max_clients} clients are connected, the most "
                                    "this server accepts; try again later.")
            response.headers["Retry-After"] = "5"
            return response
        return None

    def _page(self, request: Request) -> Response:
        status, content_type, body = http_response(request.path)
        self.pages_served += status is HTTPStatus.OK
        headers = Headers([
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Connection", "close"),
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-cache"),
            ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
            ("X-Content-Type-Options", "nosniff"),
        ])
        if self.policy.token:
            headers["Set-Cookie"] = (f"{TOKEN_COOKIE}={self.policy.token}; Path=/; HttpOnly; "
                                     "SameSite=Strict")
        return Response(status.value, status.phrase, headers, body)

    def _authorised(self, request: Request) -> bool:
        """No token configured, or the request carries it: ``?token=``, ``Authorization:
        Bearer`` (any case), or the page's cookie; compared in constant time."""
        if self.policy.token_ok(request.path, request.headers.get("Authorization")):
            return True
        cookies: SimpleCookie = SimpleCookie()
        with suppress(CookieError):
            cookies.load(request.headers.get("Cookie", ""))
        return TOKEN_COOKIE in cookies and self.policy.token_matches(cookies[TOKEN_COOKIE].value)
