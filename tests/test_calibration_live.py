"""Calibration in the real engine with the shipped model: enrol from a file, save, apply."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from test_calibration_core import demo_voice
from websockets.sync.client import connect

from streamser.bus import Overflow
from streamser.calibration.profiles import Profile, ProfileStore
from streamser.core.adapt import ActiveProfile
from streamser.core.analyzer import Analyzer, AnalyzerConfig
from streamser.core.config import CancelEnrolment, SourceSpec, StartEnrolment, UseProfile
from streamser.core.enrolment import EnrolmentConfig, EnrolmentEvent
from streamser.core.frames import AudioBlock
from streamser.engine import Engine, EngineConfig
from streamser.errors import ConfigError, ProfileError
from streamser.model import ModelRunner
from streamser.outputs.websocket import ServerConfig
from streamser.resources import default_model_path
from streamser.session import build_session
from streamser.sources import FileSource


@pytest.fixture(scope="module")
def shipped() -> ModelRunner:
    return ModelRunner.load(default_model_path())


@pytest.fixture(scope="module")
def voice_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 30 s of demo actor 20 (a voice the shipped model never heard in training)."""
    path = tmp_path_factory.mktemp("voice") / "actor20.wav"
    sf.write(path, demo_voice("20"), 16_000, subtype="PCM_16")
    return path


def run_engine(runner: ModelRunner, wav: Path, profiles: Path, *requests: object
               ) -> tuple[list[EnrolmentEvent], list, Engine]:
    engine = Engine(runner, FileSource(wav, realtime=False),
                    EngineConfig(profiles_dir=profiles))
    events = engine.enrolment.subscribe("test", 256, Overflow.DROP_OLDEST)
    frames = engine.frames.subscribe("test", 4096, Overflow.DROP_OLDEST)
    for request in requests:
        engine.control(request)  # type: ignore[arg-type]
    engine.start()
    assert engine.wait(60)
    engine.stop()
    return events.drain(), frames.drain(), engine


def test_enrolment_from_a_file_saves_and_applies_the_profile(shipped: ModelRunner,
                                                              voice_wav: Path,
                                                              tmp_path: Path) -> None:
    """started -> progress... -> done; the profile is on disk; later frames carry its name
    and differ from the model's own probabilities."""
    events, frames, engine = run_engine(shipped, voice_wav, tmp_path,
                                        StartEnrolment("me", seconds=10.0, passage="en-1"))
    kinds = [e.kind for e in events]
    assert kinds[0] == "started" and kinds[-1] == "done" and "progress" in kinds, kinds
    fractions = [e.progress.fraction for e in events if e.progress is not None]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    profile = ProfileStore(tmp_path).load_for("me", shipped.spec)
    # a neutral-only enrolment: the spectrum for a speaker-relative model, else the prior
    expected = "reference" if shipped.spec.speaker_reference else "prior"
    assert profile.adaptation.method == expected and profile.passage == "en-1"
    assert 10.0 <= profile.speech_s < 12.0
    named = [f for f in frames if f.profile == "me"]
    assert named and frames[0].profile is None
    assert named[0].start_s >= 10.0  # applied once the enrolment was complete
    assert engine.settings.profile_name == "me" and engine.stats().profile == "me"


def test_a_bad_enrolment_is_reported_not_saved(shipped: ModelRunner, tmp_path: Path) -> None:
    """A silent file ends the enrolment with 'failed' and the no-speech issue; nothing saved."""
    wav = tmp_path / "silence.wav"
    sf.write(wav, np.zeros(16_000 * 4, np.float32), 16_000)
    events, frames, _ = run_engine(shipped, wav, tmp_path / "p", StartEnrolment("me"))
    assert [e.kind for e in events] == ["started", "failed"]
    assert [i.code for i in events[-1].issues] == ["no_speech"]
    assert not (tmp_path / "p").exists()
    assert all(f.profile is None for f in frames)


def test_cancel_and_restart(shipped: ModelRunner, voice_wav: Path, tmp_path: Path) -> None:
    """A start replaced by a cancel before any audio: cancelled at once, nothing saved."""
    events, _, _ = run_engine(shipped, voice_wav, tmp_path, StartEnrolment("me"),
                              CancelEnrolment())
    assert events == []  # the cancel replaced the start before the worker saw either
    assert ProfileStore(tmp_path).entries() == []


def test_bad_requests_are_refused_at_once(shipped: ModelRunner, voice_wav: Path,
                                          tmp_path: Path) -> None:
    """Bad names, lengths and emotions are refused by control() with a message."""
    engine = Engine(shipped, FileSource(voice_wav, realtime=False),
                    EngineConfig(profiles_dir=tmp_path))
    with pytest.raises(ProfileError, match="not allowed"):
        engine.control(StartEnrolment("../x"))
    with pytest.raises(ConfigError, match="5 to 120"):
        engine.control(StartEnrolment("me", seconds=1.0))
    with pytest.raises(ConfigError, match="cannot prompt"):
        engine.control(StartEnrolment("me", emotions=("bored",)))
    engine.stop()


def test_use_profile_applies_and_clears(shipped: ModelRunner, voice_wav: Path,
                                        tmp_path: Path) -> None:
    """A profile set before start marks every frame; clearing it is published as a config."""
    run_engine(shipped, voice_wav, tmp_path, StartEnrolment("me", seconds=8.0))
    profile = ProfileStore(tmp_path).load_for("me", shipped.spec)
    active = ActiveProfile(profile.name, profile.adaptation)
    _, frames, engine = run_engine(shipped, voice_wav, tmp_path, UseProfile(active))
    assert frames and all(f.profile == "me" for f in frames)
    assert engine.settings.profile is active
    fresh = Engine(shipped, FileSource(voice_wav, realtime=False),
                   EngineConfig(analyzer=AnalyzerConfig(profile=active)))
    configs = fresh.configs.subscribe("test", 8, Overflow.DROP_OLDEST)
    assert fresh.settings.profile_name == "me"
    fresh.control(UseProfile(None))
    [published] = configs.drain()
    assert published.profile is None and published.to_dict()["profile"] is None
    fresh.stop()


def test_profile_changes_probabilities_like_the_adaptation(shipped: ModelRunner) -> None:
    """The analyzer's profiled probs equal the adaptation applied to the model's embedding."""
    audio = demo_voice("19")[: 16_000 * 6]
    plain = Analyzer(shipped.predict, shipped.spec, AnalyzerConfig(smoothing_s=0))
    enrol = plain.start_enrolment(EnrolmentConfig(target_speech_s=5, min_speech_s=2))
    plain.push(AudioBlock(0, audio, 0.0))
    result = enrol.finish()
    assert plain.head is not None
    profile = Profile.create("x", shipped.spec, plain.head, result)
    active = ActiveProfile("x", profile.adaptation)
    adapted = Analyzer(shipped.predict, shipped.spec, AnalyzerConfig(smoothing_s=0,
                                                                     profile=active))
    frames = adapted.push(AudioBlock(0, audio, 0.0))
    window = audio[16_000:48_000]  # the 2 s window ending at 3.0 s
    # a speaker-relative model hears the window relative to the profile's neutral reading
    emb = shipped.predict(window[np.newaxis, :], reference=profile.adaptation.reference).embedding
    assert emb is not None
    expected = profile.adaptation.probs(plain.head, emb)[0]
    [frame] = [f for f in frames if abs(f.end_s - 3.0) < 1e-6]
    np.testing.assert_allclose(frame.probs, expected, atol=1e-5)
    assert frame.profile == "x"


# --------------------------------------------------------------------------- websocket

def _until(ws, kind: str, timeout: float = 20.0, **match: object) -> dict:  # type: ignore[no-untyped-def]
    """The next message of type ``kind`` whose fields equal ``match``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if msg["type"] == kind and all(msg.get(k) == v for k, v in match.items()):
            return msg  # type: ignore[no-any-return]
    raise AssertionError(f"no {kind} {match} within {timeout} s")


def test_websocket_enrols_applies_lists_and_clears(shipped: ModelRunner, voice_wav: Path,
                                                   tmp_path: Path) -> None:
    """Over a real websocket: enrol -> progress events -> done -> config and frames carry the
    profile; profiles lists it; use_profile null clears it; bad requests get an error."""
    session = build_session(shipped, SourceSpec.file(voice_wav, realtime=False, loop=True),
                            AnalyzerConfig(), [ServerConfig(port=0, status_interval_s=0.3)],
                            engine_config=EngineConfig(profiles_dir=tmp_path))
    session.start()
    try:
        url = f"ws://127.0.0.1:{session.output('websocket').port}"  # type: ignore[union-attr]
        with connect(url) as ws:
            hello = json.loads(ws.recv(timeout=5))
            assert hello["type"] == "hello" and hello["profile"] is None
            ws.send(json.dumps({"type": "profiles"}))
            assert _until(ws, "profiles") == {"type": "profiles", "schema": "1.0",
                                              "profiles": [], "active": None}
            ws.send(json.dumps({"type": "enrol", "profile": "ws", "seconds": 8}))
            assert _until(ws, "enrolment", event="started")["progress"]["target_s"] == 8.0
            assert _until(ws, "enrolment", event="progress")["progress"]["fraction"] < 1.0
            done = _until(ws, "enrolment", event="done")
            assert "saved" in done["message"] and done["profile"] == "ws"
            assert _until(ws, "config")["profile"] == "ws"
            assert _until(ws, "frame", profile="ws")["model_version"] == shipped.spec.model_version
            status = _until(ws, "status", profile="ws")
            assert status["enrolling"] is None
            assert status["counters"]["queues"]["enrolment/websocket"] == 0
            ws.send(json.dumps({"type": "profiles"}))
            listed = _until(ws, "profiles")
            assert [p["name"] for p in listed["profiles"]] == ["ws"] and listed["active"] == "ws"
            ws.send(json.dumps({"type": "use_profile", "profile": None}))
            assert _until(ws, "config")["profile"] is None
            ws.send(json.dumps({"type": "use_profile", "profile": "nobody"}))
            error = _until(ws, "error")
            assert error["code"] == "calibration" and "no profile named 'nobody'" in \
                error["message"]
            ws.send(json.dumps({"type": "enrol", "profile": "../x"}))
            assert "not allowed" in _until(ws, "error")["message"]
            ws.send(json.dumps({"type": "enrol", "profile": 3}))
            assert _until(ws, "error")["code"] == "bad_profile"
            ws.send(json.dumps({"type": "use_profile", "profile": "ws"}))
            assert _until(ws, "config")["profile"] == "ws"
            with connect(url) as late:
                assert json.loads(late.recv(timeout=5))["profile"] == "ws"
    finally:
        session.stop()


def test_prompted_emotions_make_a_prototype_profile(shipped: ModelRunner, voice_wav: Path,
                                                    tmp_path: Path) -> None:
    """Passage + prompted emotions: progress names each phase, the profile has prototypes."""
    events, _, _ = run_engine(shipped, voice_wav, tmp_path,
                              StartEnrolment("p", seconds=6.0, emotions=("happy", "sad")))
    assert events[-1].kind == "done", events[-1].message
    phases = [e.progress.phase for e in events if e.progress is not None]
    assert phases.index("neutral") < phases.index("happy") < phases.index("sad")
    profile = ProfileStore(tmp_path).load_for("p", shipped.spec)
    assert profile.enrolled == ("neutral", "happy", "sad")
    if not shipped.spec.speaker_reference:
        assert profile.adaptation.method == "prototypes"
        return
    # a speaker-relative model: the reading's spectrum is kept and fed, and the prototypes
    # live in the embedding space relative to it (no shift)
    adaptation = profile.adaptation
    assert adaptation.method == "reference_prototypes"
    assert adaptation.reference is not None and adaptation.prototypes is not None
    assert not adaptation.shift.any()
    _, frames, _ = run_engine(shipped, voice_wav, tmp_path,
                              UseProfile(ActiveProfile("p", adaptation)))
    voiced = [f for f in frames if f.voiced]
    assert voiced and all(f.profile == "p" and f.voice_reference == "profile" for f in voiced)


def test_a_model_without_head_metadata_cannot_calibrate(tiny_runner: ModelRunner,
                                                        voice_wav: Path) -> None:
    """The tiny fixture model has no speaker_norm metadata: enrolment and profiles are refused
    with a message naming the model, before any audio flows."""
    engine = Engine(tiny_runner, FileSource(voice_wav, realtime=False))
    with pytest.raises(ConfigError, match="cannot be calibrated"):
        engine.control(StartEnrolment("me"))
    with pytest.raises(ConfigError, match="cannot apply voice profiles"):
        engine.control(UseProfile(ActiveProfile("x", None)))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="voice profiles cannot be applied"):
        Analyzer(tiny_runner.predict, tiny_runner.spec,
                 AnalyzerConfig(profile=ActiveProfile("x", None)))  # type: ignore[arg-type]
    engine.stop()
