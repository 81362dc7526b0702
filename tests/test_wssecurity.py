"""Defects 2-4 and 11: who may connect (Origin, Host, token), how many, and messages that used
to raise. Real server on loopback, real clients."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_wsserver import INFO, make_frame, next_of, recv_json
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from streamser.bus import Bus
from streamser.core.frames import Frame
from streamser.errors import ConfigError
from streamser.outputs.websocket import ServerConfig, WebSocketServer
from streamser.outputs.wsguard import AccessPolicy, load_token, normalise_origin

KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def http_status(port: int, headers: dict[str, str], path: str = "/",
                upgrade: bool = True) -> tuple[int, str]:
    """Send one raw handshake request; return (status code, whole response text)."""
    lines = [f"GET {path} HTTP/1.1"]
    head = {"Host": f"127.0.0.1:{port}", **headers}
    if upgrade:
        head = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": KEY,
                "Sec-WebSocket-Version": "13", **head}
    lines += [f"{k}: {v}" for k, v in head.items() if v is not None]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data or (not upgrade and not data.rstrip().endswith(b">")):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    text = data.decode("utf-8", "replace")
    return int(text.split(" ", 2)[1]), text


@pytest.fixture
def server_factory() -> Iterator:  # type: ignore[type-arg]
    servers: list[WebSocketServer] = []

    def make(**cfg: object) -> WebSocketServer:
        server = WebSocketServer(Bus("frames"), INFO, ServerConfig(port=0, **cfg))  # type: ignore[arg-type]
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.mark.parametrize(("origin", "status"), [
    (None, 101),
    ("http://localhost:3000", 101),
    ("http://127.0.0.1:5173", 101),
    ("https://[::1]", 101),
    ("https://evil.example", 403),
    ("null", 403),
    ("http://localhost.evil.example", 403),
    ("file://", 403),
])
def test_origin_allow_list_by_default(server_factory, origin: str | None, status: int) -> None:  # type: ignore[no-untyped-def]
    """No Origin and localhost pages are accepted; any other site, and null, get 403."""
    server = server_factory()
    code, text = http_status(server.port, {"Origin": origin} if origin else {})
    assert code == status
    if status == 403:
        assert "--allow-origin" in text


def test_allow_origin_names_extra_origins(server_factory) -> None:  # type: ignore[no-untyped-def]
    """--allow-origin admits exactly the named origins (null included) and their host."""
    server = server_factory(allow_origins=("https://booth.example:8443", "null"))
    assert http_status(server.port, {"Origin": "null"})[0] == 101
    assert http_status(server.port, {"Origin": "https://booth.example:8443"})[0] == 101
    assert http_status(server.port, {"Origin": "https://booth.example"})[0] == 403
    assert http_status(server.port, {"Host": "booth.example:8765"})[0] == 101


def test_rebinding_host_is_refused(server_factory) -> None:  # type: ignore[no-untyped-def]
    """A hostile name resolving to 127.0.0.1 (DNS rebinding) gets 421, even without Origin."""
    server = server_factory()
    code, text = http_status(server.port, {"Host": f"evil.example:{server.port}"})
    assert code == 421 and "rebinding" in text
    code, _ = http_status(server.port, {"Host": f"evil.example:{server.port}",
                                        "Origin": f"http://evil.example:{server.port}"})
    assert code in (403, 421)
    assert http_status(server.port, {"Host": f"localhost:{server.port}"})[0] == 101
    assert http_status(server.port, {"Host": f"[::1]:{server.port}"})[0] == 101


def test_served_page_is_its_own_allowed_origin(server_factory) -> None:  # type: ignore[no-untyped-def]
    """GET / returns the browser page; a websocket from that page's origin is accepted."""
    server = server_factory()
    code, text = http_status(server.port, {}, upgrade=False)
    assert code == 200 and "text/html" in text
    origin = f"http://127.0.0.1:{server.port}"
    assert http_status(server.port, {"Origin": origin})[0] == 101
    other = server_factory(host="0.0.0.0")  # LAN use: the page comes from the machine's address
    assert http_status(other.port, {"Host": f"10.1.2.3:{other.port}",
                                    "Origin": f"http://10.1.2.3:{other.port}"})[0] == 101


async def test_token_as_lowercase_bearer_or_query(server_factory) -> None:  # type: ignore[no-untyped-def]
    """The token is accepted as ?token=, 'Bearer' or 'bearer'; a wrong one gets 401."""
    server = server_factory(token="s3cret")
    url = f"ws://127.0.0.1:{server.port}"
    for headers in ({"Authorization": "bearer s3cret"}, {"Authorization": "BEARER  s3cret"}):
        async with connect(url, additional_headers=headers) as ws:
            assert (await recv_json(ws))["type"] == "hello"
    with pytest.raises(InvalidStatus) as info:
        async with connect(url, additional_headers={"Authorization": "Bearer s3cre"}):
            pass
    assert info.value.response.status_code == 401


def test_token_from_file_or_environment(tmp_path: Path) -> None:
    """--token wins, then --token-file's first line, then $STREAMSER_TOKEN."""
    file = tmp_path / "token"
    file.write_text("from-file\nignored\n")
    env = {"STREAMSER_TOKEN": "from-env"}
    assert load_token("given", file, env) == "given"
    assert load_token(None, file, env) == "from-file"
    assert load_token(None, None, env) == "from-env"
    assert load_token(None, None, {}) is None
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="empty"):
        load_token(None, tmp_path / "empty", {})
    with pytest.raises(ConfigError, match="cannot read"):
        load_token(None, tmp_path / "missing", {})


def test_policy_units() -> None:
    """Origins are compared normalised; ports matter except the scheme's default."""
    assert normalise_origin("HTTPS://Booth.Example:443/") == "https://booth.example"
    policy = AccessPolicy(allow_origins=("https://booth.example",), own_names=frozenset())
    assert policy.origin_allowed("https://booth.example:443", None)
    assert not policy.origin_allowed("https://booth.example:444", None)
    assert policy.token_ok("/", None)


async def test_connection_cap_answers_503(server_factory) -> None:  # type: ignore[no-untyped-def]
    """Beyond max_clients a handshake gets 503 with Retry-After; a freed slot is reusable."""
    server = server_factory(max_clients=3)
    url = f"ws://127.0.0.1:{server.port}"
    held = [await connect(url) for _ in range(3)]
    for ws in held:
        await recv_json(ws)
    with pytest.raises(InvalidStatus) as info:
        await connect(url)
    assert info.value.response.status_code == 503
    assert info.value.response.headers["Retry-After"] == "5"
    await held.pop().close()
    for _ in range(50):
        if server.subscribers == 2:
            break
        await asyncio.sleep(0.02)
    async with connect(url) as ws:
        assert (await recv_json(ws))["type"] == "hello"
    for ws in held:
        await ws.close()


SERVER_UNDER_128_FDS = textwrap.dedent("""
    import resource, sys, time
    resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))
    sys.path.insert(0, sys.argv[1])
    from test_wsserver import INFO, make_frame
    from streamser.bus import Bus
    from streamser.outputs.websocket import ServerConfig, WebSocketServer
    bus = Bus("frames")
    server = WebSocketServer(bus, INFO, ServerConfig(port=0))
    server.start()
    print(server.port, flush=True)
    for seq in range(1, 10**6):
        bus.publish(make_frame(seq))
        time.sleep(0.05)
""")


async def test_fd_limit_caps_clients_without_log_storm() -> None:
    """With 128 descriptors, 200 clients: the excess get 503, stderr stays quiet and a healthy
    client keeps receiving frames (the old server looped on accept() errors)."""
    proc = subprocess.Popen([sys.executable, "-c", SERVER_UNDER_128_FDS,
                             str(Path(__file__).parent)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 20))
        url = f"ws://127.0.0.1:{port}"
        healthy = await connect(url)
        held, refused = [], 0
        for _ in range(200):
            try:
                held.append(await asyncio.wait_for(connect(url), 5))
            except InvalidStatus as exc:
                assert exc.response.status_code == 503
                refused += 1
        assert refused >= 200 - 64 and len(held) >= 30
        seqs = []
        while len(seqs) < 5:
            msg = await recv_json(healthy, 3.0)
            if msg["type"] == "frame":
                seqs.append(msg["seq"])
        for ws in [*held, healthy]:
            await ws.close()
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert len(err) < 2000, err[:2000]


@pytest.mark.parametrize(("message", "code"), [
    ("[" * 2047 + "]" * 2047, "too_deep"),
    ('{"type":"subscribe","max_rate_hz":' + "9" * 400 + "}", "bad_rate"),
    ('{"type":"subscribe","max_rate_hz":' + "9" * 5000 + "}", None),  # over 4 KiB: 1009
    ('{"type":"ping","id":NaN}', "bad_json"),
    ('{"type":"ping","id":Infinity}', "bad_json"),
    ('{"type":"ping","id":' + "1" * 300 + "}", "bad_id"),
    ('{"type":"ping","id":[[[1]]]}', "bad_id"),
])
async def test_hostile_messages_get_errors_not_1011(server_factory, message: str,  # type: ignore[no-untyped-def]
                                                    code: str | None) -> None:
    """Messages that used to raise (close 1011 + traceback) are answered with ``error``;
    the connection stays usable."""
    server = server_factory(max_message_bytes=4096)
    async with connect(f"ws://127.0.0.1:{server.port}") as ws:
        await recv_json(ws)
        await ws.send(message)
        if code is None:
            with pytest.raises(Exception, match="1009"):
                await next_of(ws, "error")
            return
        assert (await next_of(ws, "error"))["code"] == code
        await ws.send(json.dumps({"type": "ping", "id": "after"}))
        assert (await next_of(ws, "pong"))["id"] == "after"


async def test_every_ping_gets_a_pong(server_factory) -> None:  # type: ignore[no-untyped-def]
    """10,000 pings sent in a burst get 10,000 pongs (replies are never dropped)."""
    server = server_factory()
    async with connect(f"ws://127.0.0.1:{server.port}") as ws:
        await recv_json(ws)

        async def send_all() -> None:
            for i in range(10_000):
                await ws.send(f'{{"type":"ping","id":{i}}}')

        sender = asyncio.create_task(send_all())
        ids = []
        while len(ids) < 10_000:
            msg = await recv_json(ws, 10.0)
            if msg["type"] == "pong":
                ids.append(msg["id"])
        await sender
    assert ids == list(range(10_000))


async def test_nan_frame_is_skipped_not_fatal(server_factory) -> None:  # type: ignore[no-untyped-def]
    """A frame that cannot be JSON (NaN) is skipped; the next frames still arrive."""
    server = server_factory()
    async with connect(f"ws://127.0.0.1:{server.port}") as ws:
        await recv_json(ws)
        for _ in range(100):
            if server.subscribers:
                break
            await asyncio.sleep(0.01)
        bus: Bus[Frame] = server._frames
        bad = make_frame(1)
        object.__setattr__(bad, "confidence", float("nan"))
        bus.publish(bad)
        bus.publish(make_frame(2))
        assert (await next_of(ws, "frame"))["seq"] == 2
