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

import asyncio
import contextlib
import logging
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from streamser import __version__
from streamser.bus import BoundedQueue, Bus, Overflow
from streamser.core.contract import ModelSpec
from streamser.core.frames import Frame
from streamser.core.protocol import (
    ProtocolError,
    SessionInfo,
    error_message,
    frame_message,
    hello_message,
    parse_client_message,
    reply_message,
    status_message,
)
from streamser.errors import OutputError

__all__ = ["ServerConfig", "WebSocketServer", "session_info"]

log = logging.getLogger(__name__)


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

    def __init__(self, frames: Bus[Frame], info: SessionInfo, config: ServerConfig,
                 stats: object | None = None) -> None:
        self.config = config
        self.info = info
        self._frames = frames
        self._stats = stats  # an object with .stats() -> EngineStats, for status messages
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
                process_request=self._authorise, ping_interval=20, ping_timeout=20,
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
        self._ready.set()
        status_task = asyncio.create_task(self._status_loop())
        await self._stop_event.wait()
        status_task.cancel()
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 3.0)

    def _authorise(self, conn: ServerConnection, request: Request) -> Response | None:
        token = self.config.token
        if not token:
            return None
        query = parse_qs(urlsplit(request.path).query)
        given = query.get("token", [None])[0]
        header = request.headers.get("Authorization", "")
        if given == token or header == f"Bearer {token}":
            return None
        return conn.respond(HTTPStatus.UNAUTHORIZED,
                            "streamser: missing or wrong token; connect with ?token=...\n")

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

    def _status(self, client: _Client) -> str:
        fields: dict[str, object] = {"subscribers": len(self._clients),
                                     "client_dropped": client.dropped,
                                     "max_rate_hz": client.max_rate_hz}
        if self._stats is not None:
            stats = self._stats.stats()  # type: ignore[attr-defined]
            fields.update(state=stats.state, frames=stats.frames,
                          dropped_blocks=stats.dropped_blocks, audio_s=round(stats.audio_s, 3),
                          bad_samples=stats.bad_samples, error=stats.error)
        return status_message(**fields)

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.status_interval_s)
            for client in list(self._clients):
                client.offer(self._status(client))

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
        client.offer(hello_message(self.info))
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
                else:
                    client.max_rate_hz = request.max_rate_hz
                    client.offer(reply_message("subscribed", max_rate_hz=request.max_rate_hz))
        except ConnectionClosed:
            pass
        finally:
            self._clients.discard(client)
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

