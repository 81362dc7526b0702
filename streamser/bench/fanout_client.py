"""Many light websocket subscribers in one process (a child of the fan-out benchmark).

A deliberately minimal RFC 6455 client, so that the clients' own CPU disturbs the measured
server as little as possible (they share its cores): plain non-blocking sockets polled with
``epoll`` in rounds at most 1 ms apart — so a burst of frames on many sockets costs one wake-up,
not one event-loop turn per message — and for each ``frame`` message only ``"wall_time"`` is
read: no JSON parsing, no UTF-8 decoding. It does the HTTP upgrade and answers pings.

Delivery latency = ``time.time()`` when the bytes were read minus the frame's ``wall_time``
(stamped by the server process just before publishing; same machine, same clock). The polling
adds at most ~1 ms (0.5 ms on average) to what the server achieved.

Protocol on stdin/stdout with the parent: connects ``--count`` clients to ``--port``, prints
``ready N``; waits for ``go T0 T1`` (Unix times); records frames with ``T0 <= wall_time < T1``;
after ``T1`` + 1 s prints one JSON line: a latency histogram (0.1 ms bins), frames received,
the distinct frames seen (their ``wall_time``) and its CPU seconds, then closes and exits.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import resource
import select
import socket
import struct
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence

from streamser.bench._proc import emit_json

__all__ = ["Stats", "consume", "main"]

BIN_MS = 0.1
_WALL = b'"wall_time":'
_FRAME = b'{"type":"frame"'


class Stats:
    """Shared by every connection of this process."""

    def __init__(self) -> None:
        self.t0 = float("inf")
        self.t1 = float("-inf")
        self.hist: Counter[int] = Counter()
        self.frames = 0
        self.walls: set[float] = set()
        self.closed_early = 0


def consume(buf: bytearray, now: float, stats: Stats) -> tuple[list[bytes], bool]:
    """Parse the complete websocket frames at the start of ``buf`` (removed from it).

    Frame messages in the measurement window go into ``stats``. Returns the payloads of pings
    to answer, and True when the server sent a close frame.
    """
    pings: list[bytes] = []
    closed = False
    pos = 0
    n = len(buf)
    while n - pos >= 2:
        b0, b1 = buf[pos], buf[pos + 1]
        length = b1 & 0x7F
        head = 2
        if length == 126:
            if n - pos < 4:
                break
            length = struct.unpack_from("!H", buf, pos + 2)[0]
            head = 4
        elif length == 127:
            if n - pos < 10:
                break
            length = struct.unpack_from("!Q", buf, pos + 2)[0]
            head = 10
        if n - pos < head + length:
            break
        start = pos + head
        opcode = b0 & 0x0F
        if opcode == 1 and buf.startswith(_FRAME, start):
            i = buf.find(_WALL, start, start + length) + len(_WALL)
            j = buf.find(b",", i, start + length)
            wall = float(buf[i:j])
            if stats.t0 <= wall < stats.t1:
                stats.frames += 1
                stats.hist[int((now - wall) * 1000.0 / BIN_MS)] += 1
                stats.walls.add(wall)
        elif opcode == 9:
            pings.append(bytes(buf[start : start + length]))
        elif opcode == 8:
            closed = True
        pos = start + length
    del buf[:pos]
    return pings, closed


def masked(opcode: int, payload: bytes) -> bytes:
    """A client-to-server frame (masked, as RFC 6455 requires); payload under 126 bytes."""
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + body


def _open(host: str, port: int) -> tuple[socket.socket, bytearray] | None:
    """Connect and upgrade one client (blocking, 10 s); the socket and any bytes past the
    handshake, or None."""
    try:
        sock = socket.create_connection((host, port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                     f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n".encode())
        data = bytearray()
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                sock.close()
                return None
            data += chunk
    except OSError:
        return None
    end = data.find(b"\r\n\r\n")
    if not data.startswith(b"HTTP/1.1 101"):
        sock.close()
        return None
    sock.setblocking(False)
    return sock, bytearray(data[end + 4 :])


def _serve(socks: dict[int, tuple[socket.socket, bytearray]], stats: Stats,
           stop: threading.Event) -> None:
    chunk = bytearray(65536)  # one reused receive buffer: recv(n) would allocate n bytes
    view = memoryview(chunk)
    poller = select.epoll()
    for fd in socks:
        poller.register(fd, select.EPOLLIN)
    try:
        while not stop.is_set() and socks:
            events = poller.poll(0.1)
            now = time.time()
            for fd, _ in events:
                sock, buf = socks[fd]
                try:
                    got = sock.recv_into(chunk)
                except BlockingIOError:
                    continue
                except OSError:
                    got = 0
                closed = not got
                if got:
                    buf += view[:got]
                    pings, closed = consume(buf, now, stats)
                    for payload in pings:
                        with contextlib.suppress(OSError):
                            sock.send(masked(0xA, payload))
                if closed:
                    poller.unregister(fd)
                    sock.close()
                    del socks[fd]
                    stats.closed_early += 1
            time.sleep(0.001)  # let several sockets fill: one wake-up serves them all
    finally:
        poller.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Child entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m streamser.bench.fanout_client")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    args = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.count + 256)), hard))
    stats = Stats()
    socks: dict[int, tuple[socket.socket, bytearray]] = {}
    for _ in range(args.count):
        for attempt in range(5):
            opened = _open(args.host, args.port)
            if opened is not None:
                socks[opened[0].fileno()] = opened
                break
            time.sleep(0.2 * (attempt + 1))
    connected = len(socks)
    stop = threading.Event()
    reader = threading.Thread(target=_serve, args=(socks, stats, stop), name="bench-clients",
                              daemon=True)
    reader.start()
    print(f"ready {connected}", flush=True)
    parts = sys.stdin.readline().split()
    cpu_s = 0.0
    if len(parts) == 3 and parts[0] == "go":
        stats.t0, stats.t1 = float(parts[1]), float(parts[2])
        time.sleep(max(0.0, stats.t0 - time.time()))
        cpu0 = os.times()
        time.sleep(max(0.0, stats.t1 - time.time()))
        cpu1 = os.times()
        cpu_s = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
        time.sleep(1.0)
    stop.set()
    reader.join(5)
    for sock, _ in list(socks.values()):
        sock.close()
    emit_json({"connected": connected, "frames": stats.frames, "cpu_s": cpu_s,
               "closed_early": stats.closed_early,
               "hist": {str(k): v for k, v in stats.hist.items()}, "bin_ms": BIN_MS,
               "walls": sorted(stats.walls)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
