"""The LSL output, resolved and read by a real pylsl inlet on this machine."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from collect import Collect
from conftest import speechlike

from streamser.core.analyzer import AnalyzerConfig
from streamser.core.config import SetHop, SourceSpec
from streamser.model import ModelRunner
from streamser.outputs.lsl import LslConfig, source_id
from streamser.session import build_session

pylsl = pytest.importorskip("pylsl")


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    path = tmp_path / "speech.wav"
    sf.write(path, speechlike(4.0, seed=9), 16_000, subtype="PCM_16")
    return path


def _resolve(sid: str) -> object:
    found = pylsl.resolve_byprop("source_id", sid, 1, 5.0)
    assert found, f"no LSL stream with source_id {sid}"
    return found[0]


def test_inlet_gets_frames_with_audio_clock_timestamps(tiny_runner: ModelRunner,
                                                       wav: Path) -> None:
    """One channel per label + arousal/valence/voiced_prob; values equal the frames'; stamps
    are the window ends, spaced by the hop, on the LSL clock; markers carry label and config
    changes."""
    name = f"streamser-test-{uuid.uuid4().hex[:8]}"
    collect = Collect()
    session = build_session(tiny_runner, SourceSpec.file(wav), AnalyzerConfig(),
                            [LslConfig(name), collect])
    session.start()
    inlet = markers = None
    try:
        inlet = pylsl.StreamInlet(_resolve(source_id(name)))
        markers = pylsl.StreamInlet(_resolve(source_id(name) + "-labels"))
        inlet.open_stream(5.0)
        markers.open_stream(5.0)
        info = inlet.info(5.0)
        rows: list[list[float]] = []
        stamps: list[float] = []
        deadline = time.monotonic() + 10
        while len(rows) < 6 and time.monotonic() < deadline:
            chunk, ts = inlet.pull_chunk(timeout=0.5)
            rows += chunk
            stamps += ts
        pulled_at = pylsl.local_clock()
        session.control(SetHop(0.5))
        marks: list[str] = []
        while not any(m.startswith("config") for m in marks) and time.monotonic() < deadline:
            chunk, _ = markers.pull_chunk(timeout=0.5)
            marks += [row[0] for row in chunk]
    finally:
        for opened in (inlet, markers):
            if opened is not None:
                opened.close_stream()
        session.stop()

    labels = ("neutral", "happy", "sad", "angry")
    assert info.type() == "Emotion" and info.name() == name
    assert info.channel_count() == len(labels) + 3 and info.nominal_srate() == 4.0
    assert info.channel_format() == pylsl.cf_float32 and info.source_id() == source_id(name)
    ch = info.desc().child("channels").child("channel")
    names = []
    while not ch.empty():
        names.append(ch.child_value("label"))
        ch = ch.next_sibling()
    assert names == [*labels, "arousal", "valence", "voiced_prob"]
    assert info.desc().child_value("model_version") == "tiny-test-0"
    assert info.desc().child_value("hop_s") == "0.25"

    assert len(rows) >= 6
    by_values = {tuple(np.float32([*f.smoothed, f.arousal, f.valence, f.voiced_prob])): f
                 for f in collect.frames}
    matched = [by_values.get(tuple(np.float32(r))) for r in rows]
    assert all(m is not None for m in matched), "an LSL sample matches no frame"
    seqs = [m.seq for m in matched if m is not None]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # in order, none lost
    steps = np.diff(stamps)  # from the audio clock, not from when frames were made:
    assert np.median(steps) == pytest.approx(0.25, abs=5e-4), steps  # the hop, exactly
    assert np.allclose(steps, 0.25, atol=0.005), steps  # re-anchoring moves < a block
    assert pulled_at - 1.0 < stamps[-1] < pulled_at  # on the LSL clock, in the recent past
    assert "config hop_s=0.5 smoothing_s=1.5" in marks
    assert session.status().outputs["lsl"]["frames_out"] == len(collect.frames)
