"""Defect 1: non-finite or absurd input, and a model that returns NaN, never poison the stream."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import speechlike
from tiny_model import build_tiny_model

from streamser.bus import Overflow
from streamser.cli import main
from streamser.core.analyzer import Analyzer
from streamser.core.frames import AudioBlock, Frame
from streamser.core.inputguard import ABSURD_LEVEL, sanitize
from streamser.engine import Engine, EngineState
from streamser.errors import ModelContractError
from streamser.model import ModelRunner
from streamser.sources import FileSource


def strict_json(line: str) -> dict:  # type: ignore[type-arg]
    def refuse(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    return json.loads(line, parse_constant=refuse)  # type: ignore[no-any-return]


def finite(frame: Frame) -> bool:
    values = [*frame.probs, *frame.smoothed, frame.confidence, frame.arousal, frame.valence,
              frame.level_dbfs, frame.voiced_prob]
    return all(math.isfinite(v) for v in values)


def test_sanitize_replaces_only_bad_samples() -> None:
    """NaN, inf and values past ABSURD_LEVEL become 0.0; the rest is untouched and not copied."""
    good = np.array([0.5, -1.2, ABSURD_LEVEL], dtype=np.float32)
    same, n = sanitize(good)
    assert n == 0 and same is good
    bad = np.array([0.1, np.nan, np.inf, -np.inf, 1e30, -0.3], dtype=np.float32)
    clean, n = sanitize(bad)
    assert n == 4 and clean.tolist() == pytest.approx([0.1, 0, 0, 0, 0, -0.3])
    assert math.isnan(bad[1])  # input not modified


@pytest.mark.parametrize("value", [np.nan, np.inf, 1e30])
def test_analyzer_survives_bad_samples(tiny_runner: ModelRunner, value: float) -> None:
    """Ten bad samples: every frame stays finite, none is lost, the count is reported."""
    audio = speechlike(6.0, seed=3)
    audio[40_000:40_010] = value
    analyzer = Analyzer(tiny_runner.predict, tiny_runner.spec)
    frames: list[Frame] = []
    for i in range(0, len(audio), 1024):
        frames += analyzer.push(AudioBlock(i, audio[i : i + 1024], 0.0))
    assert len(frames) == 24
    assert all(finite(f) for f in frames)
    assert analyzer.bad_samples == 10
    assert any(f.voiced and f.top_label for f in frames[-8:])  # readings go on afterwards


def test_all_absurd_input_gives_finite_silence(tiny_runner: ModelRunner) -> None:
    """A stream of 1e30 samples is analysed as silence, not as NaN frames."""
    analyzer = Analyzer(tiny_runner.predict, tiny_runner.spec)
    frames = analyzer.push(AudioBlock(0, np.full(32_000, 1e30, dtype=np.float32), 0.0))
    assert frames and all(finite(f) and not f.voiced for f in frames)
    assert analyzer.bad_samples == 32_000


def test_engine_with_nan_in_a_resampled_file_keeps_streaming(tiny_runner: ModelRunner,
                                                             tmp_path: Path) -> None:
    """NaN in a 44.1 kHz float file does not poison the resampler: frames go on, all finite,
    the engine finishes normally and reports the count."""
    rate = 44_100
    audio = np.repeat(speechlike(5.0, seed=4), 1)
    audio = np.interp(np.arange(int(5.0 * rate)) / rate, np.arange(len(audio)) / 16_000,
                      audio).astype(np.float32)
    audio[50_000:50_010] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, audio, rate, subtype="FLOAT")
    engine = Engine(tiny_runner, FileSource(path, realtime=False))
    sub = engine.frames.subscribe("test", 10_000, Overflow.DROP_OLDEST)
    engine.start()
    assert engine.wait(30)
    engine.stop()
    frames = sub.drain()
    assert engine.state is EngineState.FINISHED
    assert len(frames) == 20 and all(finite(f) for f in frames)
    assert engine.stats().bad_samples == 10


def test_analyze_of_nan_file_writes_strict_json(tiny_model_path: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """analyze never writes NaN (not JSON) and says how many samples were bad."""
    audio = speechlike(3.0, seed=5)
    audio[10_000:10_010] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, audio, 16_000, subtype="FLOAT")
    out = tmp_path / "frames.jsonl"
    assert main(["analyze", str(path), "--out", str(out), "--model", str(tiny_model_path)]) == 0
    rows = [strict_json(line) for line in out.read_text().splitlines()]
    assert len(rows) == 12
    assert "10 samples were NaN, infinite or absurdly large" in capsys.readouterr().err


def test_model_returning_nan_is_refused_at_load(tmp_path: Path) -> None:
    """A damaged model that parses but returns NaN fails at load with a clear contract error."""
    path = build_tiny_model(tmp_path / "nan.onnx", eps=float("nan"))
    with pytest.raises(ModelContractError, match="non-finite values"):
        ModelRunner.load(path)


def test_live_with_nan_model_exits_with_one_line(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI refuses a NaN-returning model with exit 2 and no traceback."""
    path = build_tiny_model(tmp_path / "nan.onnx", eps=float("nan"))
    wav = tmp_path / "a.wav"
    sf.write(wav, speechlike(1.0), 16_000)
    code = main(["live", "--source", str(wav), "--fast", "--no-gui", "--no-ws", "--quiet",
                 "--model", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and "non-finite values" in err and "Traceback" not in err
