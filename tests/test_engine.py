"""Engine with real threads: file and stdin sources, same frames as offline, ordered shutdown."""

from __future__ import annotations

import io
import threading
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import speechlike

from streamser.bus import Overflow
from streamser.core.frames import Frame
from streamser.engine import Engine, EngineState
from streamser.errors import AudioSourceError
from streamser.model import ModelRunner
from streamser.offline import analyze_file
from streamser.sources import FileSource, StdinSource


def comparable(frame: Frame) -> dict[str, object]:
    d = asdict(frame)
    del d["wall_time"], d["latency_ms"]
    return d


def run_engine(runner: ModelRunner, source) -> tuple[Engine, list[Frame]]:  # type: ignore[no-untyped-def]
    engine = Engine(runner, source)
    sub = engine.frames.subscribe("test", 10_000, Overflow.DROP_OLDEST)
    engine.start()
    assert engine.wait(30), "engine did not finish"
    engine.stop()
    return engine, sub.drain()


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    path = tmp_path / "speech.wav"
    sf.write(path, speechlike(5.0, seed=2), 16_000, subtype="FLOAT")
    return path


def test_file_source_fast_gives_the_same_frames_as_offline(
    tiny_runner: ModelRunner, wav: Path
) -> None:
    """Live engine (threads, queues) and offline analysis produce identical frames."""
    engine, live = run_engine(tiny_runner, FileSource(wav, realtime=False))
    offline = list(analyze_file(wav, tiny_runner))
    assert engine.state is EngineState.FINISHED
    assert len(live) == len(offline) == 20
    assert [comparable(f) for f in live] == [comparable(f) for f in offline]
    assert engine.stats().dropped_blocks == 0


def test_resampled_stereo_file_keeps_the_audio_clock(tiny_runner: ModelRunner,
                                                     tmp_path: Path) -> None:
    """A 44.1 kHz stereo file is converted to 16 kHz mono; times still follow the audio."""
    t = np.arange(int(44_100 * 3.0)) / 44_100
    tone = 0.3 * np.sin(2 * np.pi * 220 * t)
    path = tmp_path / "stereo.flac"
    sf.write(path, np.stack([tone, tone], axis=1), 44_100)
    engine, frames = run_engine(tiny_runner, FileSource(path, realtime=False))
    assert engine.stats().audio_s == pytest.approx(3.0, abs=0.01)
    assert frames[-1].end_s == pytest.approx(3.0, abs=0.01)


def test_stdin_pcm_source(tiny_runner: ModelRunner) -> None:
    """Raw s16le PCM on a pipe is analysed like any other source."""
    audio = speechlike(2.0, seed=4)
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    engine, frames = run_engine(tiny_runner, StdinSource(16_000, 1, io.BufferedReader(
        io.BytesIO(pcm))))  # type: ignore[arg-type]
    assert [f.end_s for f in frames][:8] == [0.25 * k for k in range(1, 9)]
    assert engine.stats().audio_s == pytest.approx(2.0, abs=1e-3)


def test_realtime_file_is_paced_and_stop_is_idempotent(tiny_runner: ModelRunner,
                                                       wav: Path) -> None:
    """A paced file runs at the audio clock; stop() mid-stream joins every thread, twice."""
    engine = Engine(tiny_runner, FileSource(wav, realtime=True))
    sub = engine.frames.subscribe("test", 100, Overflow.DROP_OLDEST)
    engine.start()
    first = sub.get(timeout=3.0)
    assert first is not None and first.end_s == 0.25
    engine.stop()
    engine.stop()
    assert engine.state is EngineState.STOPPED
    assert engine.stats().audio_s < 2.0  # it was paced, not read at full speed
    names = {t.name for t in threading.enumerate()}
    assert not names & {"streamser-inference", "streamser-file"}


def test_live_hop_change_from_another_thread(tiny_runner: ModelRunner, wav: Path) -> None:
    """set_hop from the main thread reaches the worker; frames then step by the new hop."""
    engine = Engine(tiny_runner, FileSource(wav, realtime=True))
    sub = engine.frames.subscribe("test", 100, Overflow.DROP_OLDEST)
    engine.start()
    try:
        assert sub.get(timeout=3.0) is not None
        engine.set_hop(0.5)
        ends = []
        while len(ends) < 6:
            frame = sub.get(timeout=3.0)
            assert frame is not None
            ends.append(frame.end_s)
    finally:
        engine.stop()
    steps = np.diff(ends)
    assert steps[-1] == pytest.approx(0.5) and engine.stats().hop_s == 0.5


def test_bad_files_are_refused_clearly(tmp_path: Path) -> None:
    """Missing, non-audio and empty files each get a message saying what to do."""
    with pytest.raises(AudioSourceError, match="does not exist"):
        FileSource(tmp_path / "missing.wav")
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all")
    with pytest.raises(AudioSourceError, match=r"cannot read .* Supported are"):
        FileSource(text)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 16_000)
    with pytest.raises(AudioSourceError, match="holds no audio"):
        FileSource(empty)
