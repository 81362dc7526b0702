"""Defect 5 (and the websocket part of 8): the real-time policy for slow clients, measured with
real clients that stop reading. Frames are published at 20 Hz like a fast live stream."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest
from test_wsserver import INFO, make_frame, recv_json
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from streamser.bus import Bus
from streamser.core.frames import Frame
from streamser.outputs.websocket import ServerConfig, WebSocketServer

FAST = ServerConfig(port=0, probe_interval_s=0.2, stale_after_s=0.6, close_after_s=2.0,
                    status_interval_s=0.3)


class Publisher:
    """Publishes numbered frames at ``rate_hz`` on the test's event loop."""

    def __init__(self, bus: Bus[Frame], rate_hz: float = 20.0) -> None:
        self.bus, self.rate_hz, self.seq = bus, rate_hz, 0

    async def run(self) -> None:
        while True:
            self.seq += 1
            self.bus.publish(make_frame(self.seq))
            await asyncio.sleep(1.0 / self.rate_hz)


@pytest.fixture
async def live() -> AsyncIterator[tuple[WebSocketServer, Publisher]]:
    bus: Bus[Frame] = Bus("frames")
    server = WebSocketServer(bus, INFO, FAST)
    server.start()
    publisher = Publisher(bus)
    task = asyncio.create_task(publisher.run())
    yield server, publisher
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    server.stop()


async def stalled(url: str) -> ClientConnection:
    ws = await connect(url, max_queue=1, close_timeout=0.5)
    await recv_json(ws)
    ws.transport.pause_reading()  # reads nothing: its TCP window and our buffers fill
    return ws


async def test_a_client_that_falls_behind_gets_live_frames_and_its_drop_count(live) -> None:  # type: ignore[no-untyped-def]
    """Stalled 1.5 s then reading again: old frames were dropped (counted in its status) and
    it is back on the live frame within a second; a healthy client missed nothing."""
    server, publisher = live
    url = f"ws://127.0.0.1:{server.port}"
    async with connect(url) as healthy:
        await recv_json(healthy)
        seqs: list[int] = []

        async def read_healthy() -> None:
            while True:
                msg = await recv_json(healthy)
                if msg["type"] == "frame":
                    seqs.append(msg["seq"])

        reader = asyncio.create_task(read_healthy())
        slow = await stalled(url)
        await asyncio.sleep(1.5)
        slow.transport.resume_reading()
        deadline = time.monotonic() + 3.0
        dropped = behind = None
        while time.monotonic() < deadline and (dropped is None or behind is None):
            msg = await recv_json(slow)
            if msg["type"] == "status" and msg["client_dropped"] > 0:
                dropped = msg["client_dropped"]
            if msg["type"] == "frame" and publisher.seq - msg["seq"] <= 4:
                behind = publisher.seq - msg["seq"]
        assert dropped is not None and dropped >= 10, "stale frames were not dropped"
        assert behind is not None, "the slow client never got back to the live frame"
        reader.cancel()
        assert len(seqs) > 25 and seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        await slow.close()


async def test_a_client_that_stays_behind_is_closed_with_1013_and_a_reason(live) -> None:  # type: ignore[no-untyped-def]
    """A client more than close_after_s behind is closed with 1013 and a reason it can read
    (not a silent 1006 from the keepalive)."""
    server, _ = live
    slow = await stalled(f"ws://127.0.0.1:{server.port}")
    await asyncio.sleep(3.5)
    slow.transport.resume_reading()
    with pytest.raises(ConnectionClosed) as info:
        for _ in range(1000):
            await recv_json(slow, 5.0)
    assert info.value.rcvd is not None, "no close frame reached the client"
    assert info.value.rcvd.code == 1013
    assert "behind the live stream" in info.value.rcvd.reason
    assert server.lag_closed == 1


async def test_stop_is_quick_with_a_client_that_never_reads() -> None:
    """stop() returns within ~1 s even when a client reads nothing (was 5 s)."""
    bus: Bus[Frame] = Bus("frames")
    server = WebSocketServer(bus, INFO, FAST)
    server.start()
    slow = await stalled(f"ws://127.0.0.1:{server.port}")
    for seq in range(2000):
        bus.publish(make_frame(seq))
    await asyncio.sleep(0.3)
    t0 = time.monotonic()
    await asyncio.to_thread(server.stop)
    assert time.monotonic() - t0 < 1.5
    slow.transport.abort()
