"""Websocket broadcaster: frames from the engine to any number of subscribers.

Runs its own asyncio event loop on the "streamser-ws" thread; only that thread touches sockets.
The engine's frame bus hands frames over through a bounded subscription whose ``on_put`` wakes
the loop with ``call_soon_threadsafe``. Each frame is encoded to JSON once and offered to every
client's own bounded queue (policy **drop-oldest**, counted per client and reported to it in
``status``): a client that never reads loses its own oldest frames and slows nobody else.

Security: binds 127.0.0.1 unless told otherwise (another host logs a warning); with a token set,
clients must pass ``?token=...`` or ``Authorization: Bearer ...`` or get HTTP 401. Compression is
off (it costs ~2.6x server CPU for broadcast).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email.utils
import logging
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from streamser import __version__
from streamser.bus import BoundedQueue, Bus, Overflow
from streamser.core.config import LiveSettings
from streamser.core.contract import ModelSpec
from streamser.core.enrolment import EnrolmentEvent
from streamser.core.frames import Frame
from streamser.core.protocol import (
    ClientMessage,
    ProtocolError,
    SessionInfo,
    config_message,
    enrolment_message,
    error_message,
    frame_message,
    hello_message,
    parse_client_message,
    reply_message,
    status_message,
)
from streamser.errors import ConfigError, OutputError, StreamserError
from streamser.outputs.base import OutputKind
from streamser.outputs.page import CONTENT_SECURITY_POLICY, http_response

if TYPE_CHECKING:
    from streamser.session import SessionLink, SessionStatus

__all__ = ["ServerConfig", "WebSocketOutput", "WebSocketServer", "session_info"]

log = logging.getLogger(__name__)

TOKEN_COOKIE = "streamser_token"


@dataclass(frozen=True)
class ServerConfig:
    """Websocket settings. ``port`` 0 picks a free port (see :attr:`WebSocketServer.port`)."""

    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None
    client_queue: int = 64
    max_message_bytes: int = 4096
    status_interval_s: float = 2.0
    direct_write_bytes: int = 16384
    socket_send_buffer: int = 32768
    page: bool = True
    """Serve the browser page (:mod:`streamser.outputs.page`) on the same port."""
    name = "websocket"

    def create(self) -> WebSocketOutput:
        """A websocket output for one session (the :class:`~streamser.session.OutputConfig`
        protocol)."""
        return WebSocketOutput(self)


class _Client:
    """One subscriber's queue and settings (asyncio thread only)."""

    def __init__(self, conn: ServerConnection, capacity: int) -> None:
        self.conn = conn
        self.queue: deque[str] = deque()
        self.capacity = capacity
        self.wake = asyncio.Event()
        self.dropped = 0
        self.max_rate_hz = 0.0
        self.last_frame_sent = -1e9

    def write_direct(self, data: bytes, limit: int) -> bool:
        """Write one encoded text message now if this client keeps up (nothing queued, socket
        buffer under ``limit`` bytes), as ``websockets.broadcast`` does; False otherwise."""
        conn = self.conn
        if (self.queue or conn.protocol.state is not State.OPEN
                or getattr(conn, "send_in_progress", None) is not None
                or conn.transport.get_write_buffer_size() >= limit):
            return False
        try:
            conn.protocol.send_text(data)
            conn.send_data()
        except Exception:  # closing under us: the queue path reports it like any send
            return False
        return True

    def offer(self, text: str) -> None:
        if len(self.queue) >= self.capacity:
            self.queue.popleft()
            self.dropped += 1
        self.queue.append(text)
        self.wake.set()


class WebSocketServer:
    """Broadcast frames from ``frames`` to websocket clients; see the module docstring."""

    def __init__(self, frames: Bus[Frame], info: SessionInfo | Callable[[], SessionInfo],
                 config: ServerConfig,
                 status: Callable[[], SessionStatus] | None = None,
                 configs: Bus[LiveSettings] | None = None,
                 calibration: SessionLink | None = None) -> None:
        self.config = config
        self._info = info if callable(info) else (lambda: info)
        self._frames = frames
        self._status_of = status  # the session's status, for status messages
        self._configs = configs
        self._config_sub: BoundedQueue[LiveSettings] | None = None
        self._calibration = calibration  # enrolment requests and events; None: refused
        self._enrol_sub: BoundedQueue[EnrolmentEvent] | None = None
        self._departed_dropped = 0
        self.pages_served = 0
        self._clients: set[_Client] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._stop_event: asyncio.Event | None = None
        self._sub: BoundedQueue[Frame] | None = None
        self.port: int = config.port
        self.frames_sent = 0
        self._stopped = False

    @property
    def subscribers(self) -> int:
        """Connected clients (read from any thread)."""
        return len(self._clients)

    # -- lifecycle (any thread) -----------------------------------------------------------
    def start(self) -> None:
        """Bind and start serving; raises :class:`OutputError` if the port cannot be bound."""
        if self.config.host not in ("127.0.0.1", "localhost", "::1"):
            log.warning("websocket server binds %s: reachable from other machines%s",
                        self.config.host, "" if self.config.token else " WITHOUT a --token")
        self._thread = threading.Thread(target=self._thread_main, name="streamser-ws",
                                        daemon=True)
        self._thread.start()
        self._ready.wait(10.0)
        if self._start_error is not None:
            self._thread.join(5.0)
            raise OutputError(
                f"cannot serve websockets on {self.config.host}:{self.config.port} "
                f"({self._start_error}). Pick another port with --ws-port (0 = any free port), "
                "or stop the program using it."
            ) from None

    def stop(self, timeout: float = 5.0) -> None:
        """Close every connection and the server; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        if self._sub is not None:
            self._frames.unsubscribe(self._sub)
        if self._config_sub is not None and self._configs is not None:
            self._configs.unsubscribe(self._config_sub)
        if self._enrol_sub is not None and self._calibration is not None:
            self._calibration.enrolment.unsubscribe(self._enrol_sub)
        loop, stop_event = self._loop, self._stop_event
        if loop is not None and stop_event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop_event.set)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    # -- asyncio thread -------------------------------------------------------------------
    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced to start() or logged
            if not self._ready.is_set():
                self._start_error = exc
                self._ready.set()
            else:
                log.exception("websocket server failed")

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        try:
            server = await serve(
                self._handle, self.config.host, self.config.port,
                compression=None, max_size=self.config.max_message_bytes,
                process_request=self._process_request, ping_interval=20, ping_timeout=20,
            )
        except OSError as exc:
            self._start_error = OSError(exc.strerror or str(exc))
            self._ready.set()
            return
        self._server = server
        self.port = server.sockets[0].getsockname()[1] if server.sockets else self.config.port
        loop = self._loop

        def wake() -> None:  # called on the inference thread: schedule, never block
            loop.call_soon_threadsafe(self._pump)

        self._sub = self._frames.subscribe("websocket", 256, Overflow.DROP_OLDEST, on_put=wake)
        if self._configs is not None:
            def config_changed() -> None:  # inference thread: schedule, never block
                loop.call_soon_threadsafe(self._announce_config)

            self._config_sub = self._configs.subscribe("websocket", 16, Overflow.DROP_OLDEST,
                                                       on_put=config_changed)
        if self._calibration is not None:
            def enrolment_event() -> None:  # inference thread: schedule, never block
                loop.call_soon_threadsafe(self._announce_enrolment)

            self._enrol_sub = self._calibration.enrolment.subscribe(
                "websocket", 64, Overflow.DROP_OLDEST, on_put=enrolment_event)
        self._ready.set()
        status_task = asyncio.create_task(self._status_loop())
        await self._stop_event.wait()
        status_task.cancel()
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 3.0)

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        """Before the handshake (asyncio thread): the token check, then, for a plain GET that
        is not a websocket upgrade, the browser page (see :mod:`streamser.outputs.page`).

        With a token, a page request with ``?token=`` sets an HttpOnly same-site cookie, so the
        page's own files (and the browser's websocket) are authorised without the query."""
        if not self._authorised(request):
            return conn.respond(HTTPStatus.UNAUTHORIZED,
                                "streamser: missing or wrong token; connect with ?token=...\n")
        if request.headers.get("Upgrade", "").lower() == "websocket" or not self.config.page:
            return None
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
        if self.config.token:
            headers["Set-Cookie"] = (f"{TOKEN_COOKIE}={self.config.token}; Path=/; HttpOnly; "
                                     "SameSite=Strict")
        return Response(status.value, status.phrase, headers, body)

    def _authorised(self, request: Request) -> bool:
        """No token configured, or the request carries it: ``?token=``, ``Authorization:
        Bearer``, or the page's cookie."""
        token = self.config.token
        if not token:
            return True
        given = parse_qs(urlsplit(request.path).query).get("token", [None])[0]
        cookies = SimpleCookie()
        with contextlib.suppress(CookieError):
            cookies.load(request.headers.get("Cookie", ""))
        cookie = cookies[TOKEN_COOKIE].value if TOKEN_COOKIE in cookies else None
        bearer = request.headers.get("Authorization", "")
        return token in (given, cookie) or bearer == f"Bearer {token}"

    def _pump(self) -> None:
        """Move frames from the bus subscription to every client (asyncio thread).

        A client that keeps up gets the frame written to its socket at once (no task switch per
        client: half the server CPU per message); one that lags gets it through its own bounded
        queue (drop-oldest), which its sender task drains with backpressure.
        """
        if self._sub is None:
            return
        for frame in self._sub.drain():
            text = frame_message(frame)
            data = text.encode()
            limit = self.config.direct_write_bytes
            now = time.monotonic()
            for client in list(self._clients):
                if client.max_rate_hz > 0 and now - client.last_frame_sent < (
                        1.0 / client.max_rate_hz) - 1e-3:
                    continue
                client.last_frame_sent = now
                if not client.write_direct(data, limit):
                    client.offer(text)
            self.frames_sent += 1

    def _announce_config(self) -> None:
        """Tell every connected client the settings now in force (asyncio thread)."""
        if self._config_sub is None:
            return
        changes = self._config_sub.drain()
        if changes:
            text = config_message(changes[-1])
            for client in list(self._clients):
                client.offer(text)

    def _announce_enrolment(self) -> None:
        """Send enrolment events to every client (asyncio thread)."""
        if self._enrol_sub is None:
            return
        for event in self._enrol_sub.drain():
            text = enrolment_message(event.to_dict())
            for client in list(self._clients):
                client.offer(text)

    def _calibrate(self, request: ClientMessage) -> str | None:
        """Carry out a calibration request (worker thread: may read a profile file); returns
        the reply text, if any. Raises StreamserError for a request that cannot be done."""
        link = self._calibration
        if link is None:
            raise ConfigError("calibration is not available on this server.")
        if request.type == "enrol":
            assert request.profile is not None
            link.start_enrolment(request.profile, request.seconds, request.emotions)
        elif request.type == "cancel_enrolment":
            link.cancel_enrolment()
        elif request.type == "use_profile":
            link.use_profile(request.profile)
        else:
            return reply_message("profiles", profiles=[p.to_dict() for p in link.profiles()],
                                 active=link.info().profile)
        return None

    @property
    def client_dropped(self) -> int:
        """Frames dropped by every client's queue so far, departed clients included."""
        return self._departed_dropped + sum(c.dropped for c in list(self._clients))

    def _status(self, client: _Client, session: dict[str, object]) -> str:
        """One client's ``status``: the session's fields plus this client's own."""
        return status_message(**session, subscribers=len(self._clients),
                              client_dropped=client.dropped, max_rate_hz=client.max_rate_hz)

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.status_interval_s)
            session = self._status_of().to_dict() if self._status_of is not None else {}
            for client in list(self._clients):
                client.offer(self._status(client, session))

    async def _sender(self, client: _Client) -> None:
        while True:
            await client.wake.wait()
            client.wake.clear()
            while client.queue:
                await client.conn.send(client.queue.popleft())

    async def _handle(self, conn: ServerConnection) -> None:
        sock = conn.transport.get_extra_info("socket")
        if sock is not None and self.config.socket_send_buffer > 0:
            # bounded kernel buffer: a stalled reader shows up as a growing transport buffer,
            # and from there its frames take the drop-oldest queue instead of piling up in TCP
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF,
                                self.config.socket_send_buffer)
        client = _Client(conn, self.config.client_queue)
        client.offer(hello_message(self._info()))
        self._clients.add(client)
        sender = asyncio.create_task(self._sender(client))
        try:
            async for message in conn:
                try:
                    request = parse_client_message(message)
                except ProtocolError as exc:
                    client.offer(error_message(exc.code, exc.message))
                    continue
                if request.type == "ping":
                    client.offer(reply_message("pong", id=request.id))
                elif request.type == "subscribe":
                    client.max_rate_hz = request.max_rate_hz
                    client.offer(reply_message("subscribed", max_rate_hz=request.max_rate_hz))
                else:
                    try:
                        reply = await asyncio.to_thread(self._calibrate, request)
                    except StreamserError as exc:
                        client.offer(error_message("calibration", str(exc)))
                    else:
                        if reply is not None:
                            client.offer(reply)
        except ConnectionClosed:
            pass
        finally:
            self._clients.discard(client)
            self._departed_dropped += client.dropped
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await sender


def session_info(spec: ModelSpec, hop_s: float, source: str) -> SessionInfo:
    """Build the ``hello`` contents from a ModelSpec, the hop in force and the source name."""
    return SessionInfo(
        session=uuid.uuid4().hex,
        server=f"streamser {__version__}",
        model_version=spec.model_version,
        labels=spec.labels,
        window_s=spec.window_s,
        hop_s=hop_s,
        sample_rate=spec.sample_rate,
        source=source,
    )



class WebSocketOutput:
    """The websocket server as a session output (``--ws-port``; on unless ``--no-ws``).

    New clients get a ``hello`` with the settings in force, every client a ``config`` message
    when a setting changes, and a ``status`` with the session's counters every
    ``status_interval_s``.
    """

    name = "websocket"

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.server: WebSocketServer | None = None

    def start(self, link: SessionLink) -> None:
        """Bind and serve (controlling thread); raises OutputError when the port is taken."""
        self.server = WebSocketServer(link.frames, link.info, self.config, status=link.status,
                                      configs=link.configs, calibration=link)
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    @property
    def port(self) -> int:
        """The bound port (the configured one until started)."""
        return self.server.port if self.server is not None else self.config.port

    @property
    def subscribers(self) -> int:
        """Connected clients now."""
        return self.server.subscribers if self.server is not None else 0

    def counters(self) -> dict[str, int]:
        server = self.server
        if server is None:
            return {}
        return {"frames_out": server.frames_sent, "subscribers": server.subscribers,
                "client_dropped": server.client_dropped, "pages_served": server.pages_served}

    def describe(self) -> str:
        where = f"{self.config.host}:{self.port}"
        query = "/?token=..." if self.config.token else "/"
        return f"websocket ws://{where}" + (f"; page http://{where}{query}" if self.config.page
                                             else "")


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535; 0 = any free)")
    return int(text)


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ws-host", default="127.0.0.1", help="websocket bind address")
    p.add_argument("--ws-port", type=_port, default=8765, help="websocket port (0 = any)")
    p.add_argument("--no-ws", action="store_true", help="do not serve websockets")
    p.add_argument("--token", help="require this token from websocket clients and the page")
    p.add_argument("--no-page", action="store_true", help="do not serve the browser page on "
                   "the websocket port")


def _from_args(args: argparse.Namespace) -> ServerConfig | None:
    if args.no_ws:
        return None
    return ServerConfig(host=args.ws_host, port=args.ws_port, token=args.token,
                        page=not args.no_page)


KIND = OutputKind("websocket", _add_arguments, _from_args)
