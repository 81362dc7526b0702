"""The browser page: served on the websocket port, and drawn by a real headless Chromium."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import soundfile as sf
from conftest import speechlike
from websockets.sync.client import connect

from streamser.core.analyzer import AnalyzerConfig
from streamser.core.config import SourceSpec
from streamser.model import ModelRunner
from streamser.outputs.websocket import ServerConfig
from streamser.session import Session, build_session

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: the flags a sandboxed, offline machine needs (see scripts/test)
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                  "--window-size=1100,700", "--remote-debugging-port=0"]
TOKEN = "s3cret"


@pytest.fixture
def served(tiny_runner: ModelRunner, tmp_path: Path) -> Iterator[tuple[Session, int]]:
    """A live session on a looping, real-time file with the websocket (and page) on a free
    port and a token."""
    wav = tmp_path / "speech.wav"
    sf.write(wav, speechlike(6.0, seed=13), 16_000, subtype="PCM_16")
    session = build_session(tiny_runner, SourceSpec.file(wav, loop=True), AnalyzerConfig(),
                            [ServerConfig(port=0, token=TOKEN, status_interval_s=0.5)])
    session.start()
    port = session.output("websocket").port  # type: ignore[union-attr]
    yield session, port
    session.stop()


def get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read()


def test_page_files_share_the_port_and_the_token(served: tuple[Session, int]) -> None:
    """GET / serves the page (with the token), a websocket still upgrades on the same port,
    unknown paths are 404, no token is 401."""
    session, port = served
    base = f"http://127.0.0.1:{port}"
    assert get(f"{base}/")[0] == 401
    status, kind, body = get(f"{base}/?token={TOKEN}")
    assert status == 200 and kind.startswith("text/html") and b'src="app.js"' in body
    status, kind, body = get(f"{base}/app.js?token={TOKEN}")
    assert status == 200 and kind.startswith("text/javascript") and b"new WebSocket" in body
    status, kind, body = get(f"{base}/meta.json?token={TOKEN}")
    meta = json.loads(body)
    assert kind == "application/json" and meta["circumplex"]["happy"] == [0.8, 0.5]
    assert get(f"{base}/nothing?token={TOKEN}")[0] == 404
    with connect(f"ws://127.0.0.1:{port}/?token={TOKEN}") as ws:
        assert json.loads(ws.recv(timeout=3))["type"] == "hello"
    assert session.status().outputs["websocket"]["pages_served"] == 3


class Cdp:
    """A minimal Chrome DevTools Protocol client over one page target's websocket."""

    def __init__(self, ws) -> None:  # type: ignore[no-untyped-def]
        self.ws = ws
        self.next_id = 0

    def call(self, method: str, **params: object) -> dict:  # type: ignore[type-arg]
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=10))
            if msg.get("id") == self.next_id:
                assert "error" not in msg, msg
                return msg["result"]  # type: ignore[no-any-return]

    def evaluate(self, expression: str) -> object:
        return self.call("Runtime.evaluate", expression=expression,
                         returnByValue=True)["result"].get("value")


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Cdp]:
    """Headless Debian Chromium with remote debugging on a free port."""
    if CHROMIUM is None:
        if os.environ.get("STREAMSER_REQUIRE_BROWSER"):
            pytest.fail("chromium is not installed (scripts/test installs it)")
        pytest.skip("chromium is not installed")
    profile = tmp_path / "chromium-profile"
    proc = subprocess.Popen([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                             "about:blank"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.is_file() or not port_file.read_text().strip():
            assert time.monotonic() < deadline and proc.poll() is None, "chromium did not start"
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        targets = json.loads(get(f"http://127.0.0.1:{port}/json/list")[2])
        page = next(t for t in targets if t["type"] == "page")
        with connect(page["webSocketDebuggerUrl"], max_size=None) as ws:
            yield Cdp(ws)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.mark.slow
def test_headless_chromium_draws_live_frames(served: tuple[Session, int], chromium: Cdp,
                                             tmp_path: Path) -> None:
    """The page connects with the token, receives frames, draws them, and its screenshot
    shows the plots (many colours, the label colours among them), not a blank page."""
    _, port = served
    chromium.call("Page.enable")
    chromium.call("Page.navigate", url=f"http://127.0.0.1:{port}/?token={TOKEN}")
    deadline = time.monotonic() + 20
    seen: dict = {}  # type: ignore[type-arg]
    while time.monotonic() < deadline:
        seen = json.loads(str(chromium.evaluate("JSON.stringify(window.streamser || {})")))
        if seen.get("frames", 0) >= 8 and seen.get("drawn", 0) >= 4:
            break
        time.sleep(0.2)
    assert seen.get("connected") is True, seen
    assert seen["frames"] >= 8 and seen["drawn"] >= 4, seen
    assert seen["hello"]["labels"] == ["neutral", "happy", "sad", "angry"]
    label = chromium.evaluate("document.getElementById('label').textContent")
    assert label in ("neutral", "happy", "sad", "angry", "uncertain", "\u00b7 no speech")
    png = base64.b64decode(chromium.call("Page.captureScreenshot", format="png")["data"])
    (tmp_path / "page.png").write_bytes(png)
    colours = _colours(png)
    assert len(colours) > 50, "the screenshot looks blank"
    drawn = {"#b0bec5", "#ffd54f", "#5c7cfa", "#ff5252"} & colours  # the 4 labels' colours
    assert len(drawn) >= 3, drawn


def _colours(png: bytes) -> set[str]:
    """Distinct colours (#rrggbb) on a 4-pixel grid of a PNG (decoded with Qt, no display)."""
    from PySide6.QtGui import QImage

    image = QImage()
    assert image.loadFromData(png), "not a PNG"
    return {f"#{image.pixel(x, y) & 0xFFFFFF:06x}" for x in range(0, image.width(), 2)
            for y in range(0, image.height(), 2)}
