"""The OSC output, received by a real python-osc UDP server on loopback."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from collect import Collect
from conftest import speechlike
from pythonosc import osc_packet
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_bundle import OscBundle
from pythonosc.osc_server import BlockingOSCUDPServer

from streamser.cli import main
from streamser.core.analyzer import AnalyzerConfig
from streamser.core.config import SetHop, SourceSpec
from streamser.errors import ConfigError
from streamser.model import ModelRunner
from streamser.outputs.osc import OscConfig, parse_target
from streamser.session import build_session


class Recorder(Dispatcher):
    """A python-osc dispatcher that also keeps each message's bundle timetag and type tags.

    (python-osc hands handlers the receive time for timetags in the past, so the bundle's own
    timetag is read from the datagram.)"""

    def __init__(self) -> None:
        super().__init__()
        self.got: list[tuple[float, str, list[object], str]] = []
        self.lock = threading.Lock()

    def call_handlers_for_packet(self, data: bytes, client_address: tuple[str, int]) -> list:  # type: ignore[type-arg]
        stamp = OscBundle(data).timestamp if OscBundle.dgram_is_bundle(data) else 0.0
        for timed in osc_packet.OscPacket(data).messages:
            msg = timed.message
            with self.lock:
                self.got.append((stamp, msg.address, list(msg.params), _tags(msg.dgram)))
        return super().call_handlers_for_packet(data, client_address)

    def of(self, address: str) -> list[tuple[float, str, list[object], str]]:
        with self.lock:
            return [g for g in self.got if g[1] == address]


def _tags(dgram: bytes) -> str:
    """The OSC type tag string of one message datagram (after the address)."""
    address_end = dgram.index(b"\0")
    start = (address_end + 4) & ~3
    end = dgram.index(b"\0", start)
    return dgram[start + 1:end].decode()


@pytest.fixture
def listener():  # type: ignore[no-untyped-def]
    recorder = Recorder()
    server = BlockingOSCUDPServer(("127.0.0.1", 0), recorder)  # one thread: arrival order
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield recorder, server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    path = tmp_path / "speech.wav"
    sf.write(path, speechlike(3.0, seed=11), 16_000, subtype="PCM_16")
    return path


def test_frames_labels_status_and_config_arrive_typed(listener, tiny_runner: ModelRunner,  # type: ignore[no-untyped-def]
                                                      wav: Path) -> None:
    """Every frame arrives as /streamser/frame (i f f...), label changes as /streamser/label,
    status every interval, config after a change; bundle timetags step by the hop."""
    recorder, port = listener
    collect = Collect()
    session = build_session(tiny_runner, SourceSpec.file(wav), AnalyzerConfig(),
                            [OscConfig("127.0.0.1", port, status_interval_s=0.3), collect])
    session.start()
    try:
        time.sleep(1.0)
        session.control(SetHop(0.5))
        assert session.wait(10)
    finally:
        session.stop()
    deadline = time.monotonic() + 3
    while len(recorder.of("/streamser/frame")) < len(collect.frames) and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    frames = recorder.of("/streamser/frame")
    labels = ("neutral", "happy", "sad", "angry")
    assert recorder.of("/streamser/labels")[0][2] == list(labels)
    assert len(frames) == len(collect.frames) > 5
    for (_, _, args, tags), frame in zip(frames, collect.frames, strict=True):
        assert tags == "if" + "f" * len(labels) + "fff"
        assert args[0] == frame.seq and args[1] == pytest.approx(frame.end_s)
        expected = [*frame.smoothed, frame.arousal, frame.valence, frame.voiced_prob]
        assert args[2:] == pytest.approx(expected, abs=1e-6)
    changes = recorder.of("/streamser/label")
    wanted = []
    for frame in collect.frames:
        label = frame.top_label or ("uncertain" if frame.uncertain else "none")
        if not wanted or wanted[-1][0] != label:
            wanted.append((label, frame.seq))
    assert [(c[2][0], c[2][2]) for c in changes] == wanted and changes[0][3] == "sfi"
    status = recorder.of("/streamser/status")
    assert status and status[0][3] == "siffi" and status[0][2][0] == "running"
    assert recorder.of("/streamser/config")[0][2] == [0.5, pytest.approx(1.5)]
    stamps = np.array([f[0] for f in frames])
    ends = np.array([f.end_s for f in collect.frames])
    # the audio clock: stamp = t0 + end, where the estimate t0 of sample 0's capture time only
    # ever moves earlier (a frame that arrived sooner than the first ones), never with jitter
    offsets = stamps - ends
    assert np.all(np.diff(offsets) <= 1e-3) and np.ptp(offsets) < 1.0
    assert abs(stamps[-1] - time.time()) < 10
    assert session.status().outputs["osc"]["errors"] == 0


def test_no_listener_loses_packets_without_slowing(tiny_runner: ModelRunner, wav: Path) -> None:
    """Nobody on the port: the session runs at full speed and finishes normally."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    session = build_session(tiny_runner, SourceSpec.file(wav, realtime=False),
                            AnalyzerConfig(), [OscConfig("127.0.0.1", port)])
    session.start()
    assert session.wait(20)
    session.stop()
    assert session.status().frames == 12


def test_target_parsing_and_cli_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_target("127.0.0.1:9000") == ("127.0.0.1", 9000)
    assert parse_target("[::1]:57120") == ("::1", 57120)
    for bad in ("9000", "host:", "host:99999", ":9000"):
        with pytest.raises(ConfigError, match="HOST:PORT"):
            parse_target(bad)
    assert main(["live", "--no-gui", "--osc", "nowhere"]) == 2
    assert "expected HOST:PORT" in capsys.readouterr().err


def test_cli_flags_reach_the_registered_outputs(listener, tiny_model_path: Path,  # type: ignore[no-untyped-def]
                                                wav: Path) -> None:
    """`streamser live --osc HOST:PORT --lsl NAME` goes through the output registry: every
    frame of a fast file arrives over OSC, and the LSL stream is announced."""
    recorder, port = listener
    import io
    from contextlib import redirect_stderr

    err = io.StringIO()
    with redirect_stderr(err):
        code = main(["live", "--source", str(wav), "--fast", "--no-gui", "--no-ws", "--quiet",
                     "--osc", f"127.0.0.1:{port}", "--lsl", "cli-test",
                     "--model", str(tiny_model_path)])
    assert code == 0, err.getvalue()
    deadline = time.monotonic() + 3
    while len(recorder.of("/streamser/frame")) < 12 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [m[2][0] for m in recorder.of("/streamser/frame")] == list(range(1, 13))
    assert "LSL stream 'cli-test'" in err.getvalue() and "OSC to udp://127.0.0.1" in err.getvalue()
