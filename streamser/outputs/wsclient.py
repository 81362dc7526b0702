"""One websocket subscriber's state and write path, and the open-file limit (asyncio thread).

:class:`Client` holds what the real-time policy of :mod:`streamser.outputs.websocket` needs per
connection: its bounded queue (drop-oldest, counted), its lag probe (the send time of its
unanswered ping) and its byte counts (sent, and known to be read), so the server can tell a
client that keeps up from one whose kernel buffers hide a backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from websockets.asyncio.server import ServerConnection
from websockets.protocol import State

__all__ = ["Client", "raise_fd_limit"]


def raise_fd_limit(want: int = 65536) -> int:
    """Raise the open-file soft limit towards ``want`` (within the hard limit); return it.

    Every websocket client holds one descriptor; a low soft limit (often 1024) would otherwise
    run out first. Returns the limit in force (a large number where there is no such limit).
    """
    try:
        import resource
    except ImportError:  # Windows: no such limit
        return 1 << 20
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    return 1 << 20 if soft == resource.RLIM_INFINITY else int(soft)


class Client:
    """One subscriber's queue, lag probe and settings (asyncio thread only)."""

    def __init__(self, conn: ServerConnection, capacity: int) -> None:
        self.conn = conn
        self.queue: deque[str] = deque()
        self.capacity = capacity
        self.wake = asyncio.Event()
        self.dropped = 0
        self.max_rate_hz = 0.0
        self.last_frame_sent = -1e9
        self.probe_sent: float | None = None  # monotonic time of the unanswered ping
        self.bytes_sent = 0  # message bytes handed to the connection
        self.bytes_read = 0  # of which the client is known to have read (answered pings)
        self.closing = False

    def in_flight(self) -> int:
        """Bytes sent that the client has not yet been seen to read."""
        return self.bytes_sent - self.bytes_read

    def lag(self, now: float) -> float:
        """Seconds this client is known to be behind: the age of its unanswered ping."""
        return 0.0 if self.probe_sent is None else now - self.probe_sent

    def unsent(self) -> int:
        """Bytes written for this client that are still in our user-space buffer."""
        try:
            return int(self.conn.transport.get_write_buffer_size())
        except Exception:  # transport already gone
            return 0

    def write_direct(self, data: bytes, limit: int) -> bool:
        """Write one encoded text message now if this client keeps up (nothing queued, socket
        buffer under ``limit`` bytes), as ``websockets.broadcast`` does; False otherwise."""
        conn = self.conn
        if (self.queue or conn.protocol.state is not State.OPEN
                or getattr(conn, "send_in_progress", None) is not None
                or self.unsent() >= limit):
            return False
        try:
            conn.protocol.send_text(data)
            conn.send_data()
        except Exception:  # closing under us: the queue path reports it like any send
            return False
        self.bytes_sent += len(data)
        return True

    def offer(self, text: str) -> None:
        if len(self.queue) >= self.capacity:
            self.queue.popleft()
            self.dropped += 1
        self.queue.append(text)
        self.wake.set()
