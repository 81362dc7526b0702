"""Websocket server on a real loopback port with real clients."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from streamser.bus import Bus
from streamser.core.frames import Frame
from streamser.core.protocol import SessionInfo
from streamser.errors import OutputError
from streamser.outputs.websocket import ServerConfig, WebSocketServer

INFO = SessionInfo("s1", "streamser test", "tiny-test-0", ("neutral", "happy"), 1.0, 0.25,
                   16_000, "test")


def make_frame(seq: int) -> Frame:
    return Frame(seq=seq, start_s=seq * 0.25, end_s=seq * 0.25 + 1, wall_time=time.time(),
                 labels=("neutral", "happy"), probs=(0.3, 0.7), smoothed=(0.4, 0.6),
                 top_label="happy", confidence=0.6, arousal=0.3, valence=0.5, voiced=True,
                 voiced_prob=0.8, level_dbfs=-30.0, latency_ms=2.0, model_version="tiny-test-0")


@pytest.fixture
def served() -> Iterator[tuple[Bus[Frame], WebSocketServer]]:
    bus: Bus[Frame] = Bus("frames")
    server = WebSocketServer(bus, INFO, ServerConfig(port=0, client_queue=16,
                                                     status_interval_s=0.3))
    server.start()
    yield bus, server
    server.stop()
    server.stop()  # idempotent


async def recv_json(ws, timeout: float = 3.0) -> dict:  # type: ignore[no-untyped-def]
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def next_of(ws, kind: str, timeout: float = 3.0) -> dict:  # type: ignore[no-untyped-def]
    while True:
        msg = await recv_json(ws, timeout)
        if msg["type"] == kind:
            return msg


async def wait_subscribers(server: WebSocketServer, n: int) -> None:
    for _ in range(200):
        if server.subscribers == n:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{server.subscribers} subscribers, expected {n}")


async def test_hello_then_frames_to_every_subscriber(served) -> None:  # type: ignore[no-untyped-def]
    """Each client gets hello first, then every published frame in order."""
    bus, server = served
    url = f"ws://127.0.0.1:{server.port}"
    async with connect(url) as a, connect(url) as b:
        hello = await recv_json(a)
        assert hello["type"] == "hello" and hello["schema"] == "1.0"
        assert hello["labels"] == ["neutral", "happy"] and hello["window_s"] == 1.0
        assert (await recv_json(b))["type"] == "hello"
        await wait_subscribers(server, 2)
        for seq in range(1, 6):
            bus.publish(make_frame(seq))
        for ws in (a, b):
            seqs = [(await next_of(ws, "frame"))["seq"] for _ in range(5)]
            assert seqs == [1, 2, 3, 4, 5]


async def test_subscribe_limits_rate(served) -> None:  # type: ignore[no-untyped-def]
    """A client asking for 2 Hz gets at most ~2 frames per second."""
    bus, server = served
    async with connect(f"ws://127.0.0.1:{server.port}") as ws:
        await recv_json(ws)
        await ws.send(json.dumps({"type": "subscribe", "max_rate_hz": 2}))
        assert (await next_of(ws, "subscribed"))["max_rate_hz"] == 2
        for seq in range(1, 21):  # 20 frames over 1 s
            bus.publish(make_frame(seq))
            await asyncio.sleep(0.05)
        got = []
        try:
            while True:
                msg = await recv_json(ws, 0.3)
                if msg["type"] == "frame":
                    got.append(msg["seq"])
        except TimeoutError:
            pass
        assert 2 <= len(got) <= 3, got


async def test_malformed_messages_get_errors_and_connection_stays(served) -> None:  # type: ignore[no-untyped-def]
    """Bad JSON, unknown types and bad rates get error messages; ping still works after."""
    _, server = served
    async with connect(f"ws://127.0.0.1:{server.port}") as ws:
        await recv_json(ws)
        await ws.send("{not json")
        assert (await next_of(ws, "error"))["code"] == "bad_json"
        await ws.send(json.dumps({"type": "dance"}))
        err = await next_of(ws, "error")
        assert err["code"] == "unknown_type" and "subscribe" in err["message"]
        await ws.send(json.dumps({"type": "subscribe", "max_rate_hz": -3}))
        assert (await next_of(ws, "error"))["code"] == "bad_rate"
        await ws.send(b"\x00\x01")
        assert (await next_of(ws, "error"))["code"] == "binary_not_supported"
        await ws.send(json.dumps({"type": "ping", "id": 42}))
        assert (await next_of(ws, "pong"))["id"] == 42


async def test_oversized_message_closes_with_1009(served) -> None:  # type: ignore[no-untyped-def]
    """A message over the size limit closes the connection with code 1009."""
    _, server = served
    async with connect(f"ws://127.0.0.1:{server.port}") as ws:
        await recv_json(ws)
        await ws.send("x" * 10_000)
        with pytest.raises(ConnectionClosed) as info:
            for _ in range(10):
                await recv_json(ws)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1009


async def test_slow_client_loses_its_own_oldest_frames_only(served) -> None:  # type: ignore[no-untyped-def]
    """A client that never reads does not stall the publisher or a healthy client."""
    bus, server = served
    url = f"ws://127.0.0.1:{server.port}"
    async with connect(url, max_queue=1, close_timeout=0.5) as slow, connect(url) as fast:
        slow.transport.pause_reading()  # never reads: its TCP window fills up
        await recv_json(fast)
        await wait_subscribers(server, 2)

        async def publish() -> float:
            t0 = time.monotonic()
            for seq in range(1, 3001):
                bus.publish(make_frame(seq))
                if seq % 100 == 0:
                    await asyncio.sleep(0.01)
            publish_s = time.monotonic() - t0
            for seq in range(3001, 3011):  # back to a live rate after the burst
                bus.publish(make_frame(seq))
                await asyncio.sleep(0.05)
            return publish_s

        publisher = asyncio.create_task(publish())
        last = 0
        while last < 3010:  # the burst may be thinned (stale frames); live frames arrive
            msg = await next_of(fast, "frame", 5.0)
            last = msg["seq"]
        assert await publisher < 5.0
        await asyncio.sleep(0.8)  # a status round
        slow.transport.resume_reading()
        dropped = 0
        deadline = time.monotonic() + 5.0
        while dropped == 0 and time.monotonic() < deadline:
            msg = await recv_json(slow, 2.0)
            if msg["type"] == "status":
                dropped = msg["client_dropped"]
        assert dropped > 0


async def test_token_is_required_when_set() -> None:
    """With a token, clients without it get HTTP 401; with it, hello."""
    bus: Bus[Frame] = Bus("frames")
    server = WebSocketServer(bus, INFO, ServerConfig(port=0, token="s3cret"))
    server.start()
    try:
        with pytest.raises(InvalidStatus) as info:
            async with connect(f"ws://127.0.0.1:{server.port}"):
                pass
        assert info.value.response.status_code == 401
        async with connect(f"ws://127.0.0.1:{server.port}/?token=s3cret") as ws:
            assert (await recv_json(ws))["type"] == "hello"
    finally:
        server.stop()


def test_port_in_use_is_a_clear_error(served) -> None:  # type: ignore[no-untyped-def]
    """Binding a taken port raises OutputError that says what to do."""
    _, server = served
    other = WebSocketServer(Bus("frames"), INFO, ServerConfig(port=server.port))
    with pytest.raises(OutputError, match=r"cannot serve websockets on 127.0.0.1:\d+ .*--ws-port"):
        other.start()
