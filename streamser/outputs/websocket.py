"""Websocket broadcaster: frames from the engine to any number of subscribers.

Runs its own asyncio event loop on the "streamser-ws" thread; only that thread touches sockets.
The engine's frame bus hands frames over through a bounded subscription whose ``on_put`` wakes
the loop with ``call_soon_threadsafe``. Each frame is encoded to JSON once and written to every
client that keeps up.

**Real-time policy for slow clients.** A client's kernel receive buffer can hide minutes of
backlog, so the server measures how far each client is behind: it pings every client each
``probe_interval_s`` and a client's *lag* is the age of its oldest unanswered ping (a pong comes
back only once the client has read everything sent before the ping). While the lag exceeds
``stale_after_s``, or the client's unsent bytes exceed its write budget (``write_budget_bytes``),
its frames are stale and dropped — counted in that client's ``status.client_dropped`` — so that
when it catches up it gets the live frame, not an old one. A client that stays more than
``close_after_s`` behind is closed with code **1013** and a reason saying why. Replies to a
client's own requests (``pong``, ``subscribed``, ``error``) are never dropped: the server stops
reading a client's requests until its replies are written.

Security (see :mod:`streamser.outputs.wsguard`): binds 127.0.0.1 unless told otherwise;
refuses foreign ``Origin`` (403) and rebinding ``Host`` names (421); with a token, clients must pass
``?token=...`` or ``Authorization: Bearer ...`` (401); at most ``max_clients`` connections
(503 beyond, and never more than the open-file limit allows; the soft limit is raised at start).
Every per-message error is answered with ``error`` and the connection stays open. A plain HTTP
``GET`` serves the browser page (:mod:`streamser.outputs.page`). Compression is off (it costs
~2.6x server CPU for broadcast).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

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
from streamser.outputs.wsclient import Client as _Client
from streamser.outputs.wsclient import raise_fd_limit
from streamser.outputs.wsguard import TOKEN_ENV, AccessPolicy, Gate, load_token

if TYPE_CHECKING:
    from streamser.session import SessionLink, SessionStatus

__all__ = ["ServerConfig", "WebSocketOutput", "WebSocketServer", "session_info"]

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class ServerConfig:
    """Websocket settings. ``port`` 0 picks a free port (see :attr:`WebSocketServer.port`).

    Times in seconds, sizes in bytes. ``allow_origins`` adds browser origins to the defaults
    (see :mod:`streamser.outputs.wsguard`); ``max_clients`` caps connections (HTTP 503 beyond).
    """

    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None
    allow_origins: tuple[str, ...] = ()
    max_clients: int = 1000
    client_queue: int = 64
    max_message_bytes: int = 4096
    status_interval_s: float = 2.0
    direct_write_bytes: int = 16384
    write_budget_bytes: int = 65536
    socket_send_buffer: int = 32768
    probe_interval_s: float = 1.0
    stale_after_s: float = 2.0
    close_after_s: float = 10.0
    page: bool = True
    """Serve the browser page (:mod:`streamser.outputs.page`) on the same port."""
    name = "websocket"

    def create(self) -> WebSocketOutput:
        """A websocket output for one session (the :class:`~streamser.session.OutputConfig`
        protocol)."""
        return WebSocketOutput(self)


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
        self.lag_closed = 0
        self._stopped = False
        self._gate = Gate(AccessPolicy(config.allow_origins, config.host, config.token),
                          config.page, lambda: len(self._clients))
        self._last_loop_error = -1e9
        self._tasks: set[asyncio.Future[Any]] = set()  # probes and closes in flight

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
        fd_limit = raise_fd_limit()
        self._gate.max_clients = max(1, min(self.config.max_clients, fd_limit - 64))
        if self._gate.max_clients < self.config.max_clients:
            log.info("websocket clients capped at %d by the open-file limit %d",
                     self._gate.max_clients, fd_limit)
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
            self._loop.set_exception_handler(self._loop_error)
            server = await serve(
                self._handle, self.config.host, self.config.port,
                compression=None, max_size=self.config.max_message_bytes,
                process_request=self._gate, ping_interval=None, close_timeout=2.0,
                open_timeout=10.0,
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
        tasks = [asyncio.create_task(self._status_loop()), asyncio.create_task(self._probe_loop())]
        await self._stop_event.wait()
        for task in tasks:
            task.cancel()
        server.close(close_connections=False)
        for client in list(self._clients):  # a close frame to all, then no waiting on readers
            self._close(client, 1001, "streamser is shutting down")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 0.5)
        for client in list(self._clients):
            client.conn.transport.abort()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 1.0)

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """asyncio's error reports (e.g. accept() out of file descriptors): one line per 10 s,
        never a traceback storm (asyncio thread)."""
        now = time.monotonic()
        if now - self._last_loop_error >= 10.0:
            self._last_loop_error = now
            exc = context.get("exception")
            log.warning("websocket server: %s%s", context.get("message", "event loop error"),
                        f" ({exc})" if exc else "")

    def _pump(self) -> None:
        """Move frames from the bus subscription to every client (asyncio thread).

        A client that keeps up gets the frame written to its socket at once (no task switch per
        client: half the server CPU per message); one that lags gets it through its own bounded
        queue (drop-oldest), which its sender task drains with backpressure.
        """
        if self._sub is None:
            return
        config = self.config
        for frame in self._sub.drain():
            try:
                text = frame_message(frame)  # ValueError for NaN (allow_nan=False)
            except ValueError as exc:  # a frame that is not JSON: skip it, keep the stream
                log.error("frame %d not sent: %s", frame.seq, exc)
                continue
            data = text.encode()
            now = time.monotonic()
            for client in list(self._clients):
                if client.max_rate_hz > 0 and now - client.last_frame_sent < (
                        1.0 / client.max_rate_hz) - 1e-3:
                    continue
                client.last_frame_sent = now
                if client.closing:
                    continue
                lag = client.lag(now)
                if lag > config.close_after_s:
                    self._close_lagging(client, lag)
                elif lag > config.stale_after_s or client.in_flight() > config.write_budget_bytes:
                    client.dropped += 1  # stale: it gets the live frame once it catches up
                elif not client.write_direct(data, config.direct_write_bytes):
                    client.offer(text)
                if (client.probe_sent is None
                        and client.in_flight() > config.write_budget_bytes // 2):
                    self._start_probe(client, now)  # refresh the budget early (fast streams)
            self.frames_sent += 1

    def _close(self, client: _Client, code: int, reason: str, wait_s: float = 2.0) -> None:
        """Start closing one client with ``code`` and ``reason``, waiting up to ``wait_s`` for
        its answer before dropping the connection (asyncio thread)."""
        if client.closing:
            return
        client.closing = True
        client.queue.clear()
        client.conn.close_timeout = wait_s
        task = asyncio.ensure_future(client.conn.close(code, reason))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _close_lagging(self, client: _Client, lag: float) -> None:
        self.lag_closed += 1
        # the close frame follows at most a write budget of frames: a client that still reads
        # gets to it, so give it time before the connection is dropped
        self._close(client, 1013, f"client fell {lag:.0f} s behind the live stream "
                    f"(limit {self.config.close_after_s:g} s); read faster or subscribe with "
                    "a lower max_rate_hz", wait_s=120.0)

    async def _probe_loop(self) -> None:
        """Ping every client each ``probe_interval_s``; close those too far behind."""
        while True:
            await asyncio.sleep(self.config.probe_interval_s)
            now = time.monotonic()
            for client in list(self._clients):
                if client.closing:
                    continue
                lag = client.lag(now)
                if lag > self.config.close_after_s:
                    self._close_lagging(client, lag)
                elif client.probe_sent is None:
                    self._start_probe(client, now)

    def _start_probe(self, client: _Client, now: float) -> None:
        client.probe_sent = now
        task = asyncio.ensure_future(self._probe(client))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _probe(self, client: _Client) -> None:
        """One ping; when its pong arrives the client has read everything sent before it."""
        sent = client.bytes_sent
        try:
            waiter = await client.conn.ping()
            await waiter
        except Exception:  # closed meanwhile
            return
        client.probe_sent = None
        client.bytes_read = max(client.bytes_read, sent)

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
    def pages_served(self) -> int:
        """Browser page files served."""
        return self._gate.pages_served

    @property
    def refused(self) -> dict[int, int]:
        """Handshakes refused, by HTTP status (403 origin, 421 host, 401 token, 503 full)."""
        return self._gate.refused

    @property
    def client_dropped(self) -> int:
        """Frames dropped by every client's queue so far, departed clients included."""
        return self._departed_dropped + sum(c.dropped for c in list(self._clients))

    def _status(self, client: _Client, session: dict[str, object]) -> str:
        """One client's ``status``: the session's fields plus this client's own."""
        return status_message(**session, subscribers=len(self._clients),
                              client_dropped=client.dropped,
                              client_lag_s=round(client.lag(time.monotonic()), 1),
                              max_rate_hz=client.max_rate_hz)

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.status_interval_s)
            session = self._status_of().to_dict() if self._status_of is not None else {}
            now = time.monotonic()
            for client in list(self._clients):
                if client.closing or client.lag(now) > self.config.stale_after_s:
                    continue  # a lagging client gets a fresh status once it catches up
                client.offer(self._status(client, session))

    async def _sender(self, client: _Client) -> None:
        while True:
            await client.wake.wait()
            client.wake.clear()
            while client.queue:
                text = client.queue.popleft()
                client.bytes_sent += len(text)
                await client.conn.send(text)

    async def _answer(self, client: _Client, message: str | bytes) -> str | None:
        """The reply to one client message, if any (asyncio thread); never raises."""
        try:
            request = parse_client_message(message)
            if request.type == "ping":
                return reply_message("pong", id=request.id)
            if request.type == "subscribe":
                client.max_rate_hz = request.max_rate_hz
                return reply_message("subscribed", max_rate_hz=request.max_rate_hz)
            try:
                return await asyncio.to_thread(self._calibrate, request)
            except StreamserError as exc:
                return error_message("calibration", str(exc))
        except ProtocolError as exc:
            return error_message(exc.code, exc.message)
        except Exception as exc:  # a bug: answer it, keep the connection and the server
            log.debug("client message failed", exc_info=True)
            return error_message("internal", f"the server could not handle this message "
                                 f"({type(exc).__name__}); the connection stays open.")

    async def _handle(self, conn: ServerConnection) -> None:
        sock = conn.transport.get_extra_info("socket")
        if sock is not None and self.config.socket_send_buffer > 0:
            # bounded kernel buffer: a stalled reader shows up as a growing transport buffer
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF,
                                self.config.socket_send_buffer)
        client = _Client(conn, self.config.client_queue)
        try:
            await conn.send(hello_message(self._info()))  # first, before any frame
        except ConnectionClosed:
            return
        self._clients.add(client)
        sender = asyncio.create_task(self._sender(client))
        try:
            async for message in conn:
                # awaited, never queued: a client flooding requests is paced by its own reading
                reply = await self._answer(client, message)
                if reply is not None:
                    client.bytes_sent += len(reply)
                    await conn.send(reply)
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
                "client_dropped": server.client_dropped, "pages_served": server.pages_served,
                "refused": sum(server.refused.values())}

    def describe(self) -> str:
        host = self.config.host
        where = f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"
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
    p.add_argument("--token", help="require this token from websocket clients and the page "
                   f"(visible in the process list: prefer --token-file or ${TOKEN_ENV})")
    p.add_argument("--token-file", type=Path, help="read the websocket token from the first "
                   "line of this file")
    p.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                   help="also accept websocket clients from this browser origin, e.g. "
                   "https://booth.example or null (repeatable; localhost pages always are)")
    p.add_argument("--max-clients", type=int, default=1000,
                   help="most websocket clients at once; more get HTTP 503 (default 1000)")
    p.add_argument("--no-page", action="store_true", help="do not serve the browser page on "
                   "the websocket port")


def _from_args(args: argparse.Namespace) -> ServerConfig | None:
    if args.no_ws:
        return None
    if args.max_clients < 1:
        raise ConfigError(f"--max-clients {args.max_clients}: use 1 or more.")
    if args.token:
        print("streamser: note: --token is visible to every user in the process list; "
              f"--token-file or ${TOKEN_ENV} keep it private", file=sys.stderr)
    return ServerConfig(host=args.ws_host, port=args.ws_port,
                        token=load_token(args.token, args.token_file), page=not args.no_page,
                        allow_origins=tuple(args.allow_origin), max_clients=args.max_clients)


KIND = OutputKind("websocket", _add_arguments, _from_args)
