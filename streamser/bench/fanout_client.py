"""Many light websocket subscribers in one process (a child of the fan-out benchmark).

A deliberately minimal RFC 6455 client on asyncio protocols, so that the clients' own CPU cost
disturbs the measured server as little as possible: it does the HTTP upgrade, answers pings,
and for each ``frame`` message reads only ``"wall_time"`` — no JSON parsing, no UTF-8 decoding.
Delivery latency = ``time.time()`` when the bytes were read minus the frame's ``wall_time``
(stamped by the server process just before publishing; same machine, same clock).

Protocol on stdin/stdout with the parent: connects ``--count`` clients to ``--port``, prints
``ready N``; waits for ``go T0 T1`` (Unix times); records frames with ``T0 <= wall_time < T1``;
after ``T1`` + 1 s prints one JSON line: a latency histogram (0.1 ms bins), frames received and
the distinct frames seen (their ``wall_time``), then closes everything and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import functools
import os
import resource
import struct
import sys
import time
from collections import Counter
from collections.abc import Sequence

from streamser.bench._proc import emit_json

__all__ = ["main"]

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
        self.connected = 0
        self.closed_early = 0
        self.walls: set[float] = set()


class Subscriber(asyncio.Protocol):
    """One websocket connection; counts frame latencies into :class:`Stats`."""

    def __init__(self, stats: Stats, host: str, port: int, opened: asyncio.Future[bool]) -> None:
        self.stats, self.host, self.port, self.opened = stats, host, port, opened
        self.buf = bytearray()
        self.upgraded = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            f"GET / HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            "\r\n".encode())

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_result(False)
        elif self.upgraded:
            self.stats.closed_early += 1

    def _send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        assert self.transport is not None and len(payload) < 126
        self.transport.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        self.buf += data
        buf = self.buf
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            ok = buf.startswith(b"HTTP/1.1 101")
            del buf[: end + 4]
            self.upgraded = ok
            if not self.opened.done():
                self.opened.set_result(ok)
            if not ok:
                assert self.transport is not None
                self.transport.close()
                return
        pos = 0
        n = len(buf)
        stats = self.stats
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
                self._send(0xA, bytes(buf[start : start + length]))
            elif opcode == 8:
                assert self.transport is not None
                self.transport.close()
            pos = start + length
        del buf[:pos]


async def _connect_all(stats: Stats, host: str, port: int, count: int) -> list[asyncio.Transport]:
    loop = asyncio.get_running_loop()
    transports: list[asyncio.Transport] = []
    sem = asyncio.Semaphore(16)

    async def one() -> None:
        for attempt in range(5):
            async with sem:
                opened: asyncio.Future[bool] = loop.create_future()
                factory = functools.partial(Subscriber, stats, host, port, opened)
                try:
                    transport, _ = await asyncio.wait_for(
                        loop.create_connection(factory, host, port), 10)
                    if await asyncio.wait_for(opened, 10):
                        transports.append(transport)
                        stats.connected += 1
                        return
                    transport.close()
                except (OSError, asyncio.TimeoutError):
                    pass
            await asyncio.sleep(0.2 * (attempt + 1))

    await asyncio.gather(*(one() for _ in range(count)))
    return transports


async def _amain(host: str, port: int, count: int) -> None:
    stats = Stats()
    transports = await _connect_all(stats, host, port, count)
    print(f"ready {stats.connected}", flush=True)
    loop = asyncio.get_running_loop()
    line = await loop.run_in_executor(None, sys.stdin.readline)
    parts = line.split()
    cpu_s = 0.0
    if len(parts) == 3 and parts[0] == "go":
        stats.t0, stats.t1 = float(parts[1]), float(parts[2])
        await asyncio.sleep(max(0.0, stats.t0 - time.time()))
        cpu0 = os.times()
        await asyncio.sleep(max(0.0, stats.t1 - time.time()))
        cpu1 = os.times()
        cpu_s = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
        await asyncio.sleep(1.0)
    for transport in transports:
        transport.abort()
    emit_json({"connected": stats.connected, "frames": stats.frames, "cpu_s": cpu_s,
               "closed_early": stats.closed_early,
               "hist": {str(k): v for k, v in stats.hist.items()}, "bin_ms": BIN_MS,
               "walls": sorted(stats.walls)})


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
    asyncio.run(_amain(args.host, args.port, args.count))
    return 0


if __name__ == "__main__":
    sys.exit(main())
