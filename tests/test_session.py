"""The session: outputs around a real engine, config events, every counter in status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile as sf
from collect import Collect
from conftest import speechlike
from websockets.sync.client import connect

from streamser.bus import Bus, Overflow
from streamser.core.config import SetHop, SourceKind, SourceSpec
from streamser.engine import EngineState
from streamser.errors import ConfigError, OutputError
from streamser.model import ModelRunner
from streamser.outputs.websocket import ServerConfig
from streamser.session import build_session


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    path = tmp_path / "speech.wav"
    sf.write(path, speechlike(4.0, seed=5), 16_000, subtype="PCM_16")
    return path


def test_source_spec_parses_the_cli_forms(tmp_path: Path) -> None:
    """'mic', '-', and a path become typed specs; a digit device is an index."""
    assert SourceSpec.parse("mic").kind is SourceKind.MIC
    assert SourceSpec.parse("mic", device="2").device == 2
    stdin = SourceSpec.parse("-", rate=48_000, channels=2)
    assert (stdin.kind, stdin.rate, stdin.channels, stdin.realtime) == \
        (SourceKind.STDIN, 48_000, 2, False)
    file = SourceSpec.parse("a.wav", realtime=False, loop=True)
    assert file.path == Path("a.wav") and not file.realtime and file.loop
    with pytest.raises(ValueError, match="needs a path"):
        SourceSpec(SourceKind.FILE)


def test_outputs_get_every_frame_and_stop_in_order(tiny_runner: ModelRunner, wav: Path) -> None:
    """Two outputs see the same frames as the engine made; both are closed after stop."""
    a, b = Collect("a"), Collect("b")
    session = build_session(tiny_runner, SourceSpec.file(wav, realtime=False),
                            _analyzer(), [a, b])
    session.start()
    assert session.wait(20)
    session.stop()
    session.stop()
    status = session.status()
    assert status.state is EngineState.FINISHED and status.frames == 16
    assert [f.seq for f in a.frames] == [f.seq for f in b.frames] == list(range(1, 17))
    assert a.closed and b.closed
    assert status.outputs["a"] == {"frames_out": 16, "errors": 0}
    assert status.queues["frames/a"] == 0 and status.losses() == {}


def test_an_output_that_cannot_start_stops_the_session(tiny_runner: ModelRunner,
                                                       wav: Path) -> None:
    """Strict (CLI): the error propagates, the outputs already started are stopped, no engine
    runs. Tolerant (dashboard): the output is reported and left out."""
    first, broken = Collect("first"), Collect("broken", fail_open=True)
    session = build_session(tiny_runner, SourceSpec.file(wav), _analyzer(), [first, broken])
    with pytest.raises(OutputError, match="broken cannot open"):
        session.start()
    assert first.closed and session.status().state is EngineState.STOPPED

    said: list[str] = []
    ok, broken = Collect("ok"), Collect("broken", fail_open=True)
    session = build_session(tiny_runner, SourceSpec.file(wav, realtime=False), _analyzer(),
                            [broken, ok], said.append, tolerate_output_errors=True)
    session.start()
    assert session.wait(20)
    session.stop()
    assert said == ["broken output disabled: broken cannot open (test)"]
    assert len(ok.frames) == 16 and session.output("broken") is None


def test_hop_change_reaches_hello_config_and_outputs(tiny_runner: ModelRunner,
                                                     wav: Path) -> None:
    """After a live hop change a connected client gets `config`, a new client's hello carries
    the new hop, and outputs get the change too."""
    collect = Collect()
    session = build_session(tiny_runner, SourceSpec.file(wav, loop=True), _analyzer(),
                            [ServerConfig(port=0, status_interval_s=0.2), collect])
    session.start()
    try:
        url = f"ws://127.0.0.1:{session.output('websocket').port}"  # type: ignore[union-attr]
        with connect(url) as early:
            hello = json.loads(early.recv(timeout=3))
            assert hello["hop_s"] == 0.25 and hello["smoothing_s"] == 1.5
            session.control(SetHop(0.5))
            config = _next(early, "config")
            assert config == {"type": "config", "schema": "1.0", "hop_s": 0.5,
                              "smoothing_s": 1.5, "speaker_norm": False, "profile": None,
                              "session_prior": False}
            with connect(url) as late:
                assert json.loads(late.recv(timeout=3))["hop_s"] == 0.5
            status = _next(early, "status")
        with pytest.raises(ConfigError):
            session.control(SetHop(99.0))
    finally:
        session.stop()
    assert collect.configs == [0.5]
    assert status["hop_s"] == 0.5 and status["state"] == "running"
    counters = status["counters"]
    assert set(counters) == {"engine", "queues", "outputs"}
    assert {"capture_dropped_blocks", "skipped_windows", "overwritten_samples", "gap_samples",
            "bad_samples", "input_overflows"} <= set(counters["engine"])
    assert {"frames/websocket", "frames/collect", "configs/websocket"} <= set(counters["queues"])
    assert counters["outputs"]["websocket"]["subscribers"] >= 1


def test_bus_keeps_drops_of_gone_subscribers() -> None:
    """A subscriber's drops stay counted after it unsubscribes (nothing lost goes uncounted)."""
    bus: Bus[int] = Bus("numbers")
    q = bus.subscribe("slow", 2, Overflow.DROP_OLDEST)
    for i in range(5):
        bus.publish(i)
    assert bus.dropped() == {"slow": 3}
    bus.unsubscribe(q)
    again = bus.subscribe("slow", 1, Overflow.DROP_OLDEST)
    bus.publish(1)
    bus.publish(2)
    assert bus.dropped() == {"slow": 4}
    bus.close()
    assert bus.dropped() == {"slow": 4} and again.closed


def _analyzer():  # type: ignore[no-untyped-def]
    from streamser.core.analyzer import AnalyzerConfig

    return AnalyzerConfig()


def _next(ws, kind: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    for _ in range(200):
        msg = json.loads(ws.recv(timeout=3))
        if msg["type"] == kind:
            return msg  # type: ignore[no-any-return]
    raise AssertionError(f"no {kind} message")
