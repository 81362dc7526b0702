"""Analyzer: chunk-size invariance, voice gating, smoothing, audio clock, live hop changes."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest
from conftest import speechlike

from streamser.core.analyzer import Analyzer, AnalyzerConfig
from streamser.core.contract import ModelSpec, Prediction, parse_metadata
from streamser.core.frames import AudioBlock, Frame
from streamser.core.smoothing import EmaSmoother
from streamser.errors import ConfigError, ModelContractError
from streamser.model import ModelRunner


def run(runner: ModelRunner, audio: np.ndarray, block: int, **cfg: float) -> list[Frame]:
    analyzer = Analyzer(runner.predict, runner.spec, AnalyzerConfig(**cfg))  # type: ignore[arg-type]
    frames: list[Frame] = []
    for i in range(0, len(audio), block):
        frames += analyzer.push(AudioBlock(i, audio[i : i + block], arrival=0.0))
    return frames + analyzer.flush()


def comparable(frame: Frame) -> dict[str, object]:
    d = asdict(frame)
    del d["wall_time"], d["latency_ms"]
    return d


def test_same_audio_in_256_or_4096_sample_blocks_gives_identical_frames(
    tiny_runner: ModelRunner, speech: np.ndarray
) -> None:
    """Chunking never changes the frames (STYLE rule 7)."""
    small = run(tiny_runner, speech, 256)
    large = run(tiny_runner, speech, 4096)
    assert len(small) == len(large) == 6 * 4 + 0  # hop 0.25 s over 6 s, no tail
    assert [comparable(f) for f in small] == [comparable(f) for f in large]


def test_frames_carry_audio_clock_times(tiny_runner: ModelRunner, speech: np.ndarray) -> None:
    """Start/end come from sample counts: window 1.0 s, hop 0.25 s, clipped at stream start."""
    frames = run(tiny_runner, speech, 1000)
    assert [f.seq for f in frames] == list(range(1, len(frames) + 1))
    assert frames[0].start_s == 0.0 and frames[0].end_s == 0.25
    assert frames[10].start_s == pytest.approx(1.75) and frames[10].end_s == pytest.approx(2.75)


def test_silence_is_marked_unvoiced_and_speech_voiced(tiny_runner: ModelRunner) -> None:
    """Silent windows carry no emotion label; speech windows do."""
    audio = np.concatenate([np.zeros(32_000, np.float32), speechlike(3.0)])
    frames = run(tiny_runner, audio, 512)
    silent = [f for f in frames if f.end_s <= 2.0]
    speaking = [f for f in frames if f.start_s >= 2.25]
    assert silent and all(not f.voiced and f.top_label is None for f in silent)
    assert speaking and all(f.voiced and f.top_label is not None for f in speaking)


def test_gain_changes_reach_the_model(tiny_runner: ModelRunner, speech: np.ndarray) -> None:
    """Different audio gives different probabilities (the pipeline is not a constant)."""
    quiet = run(tiny_runner, speech * 0.05, 4096)[-1]
    loud = run(tiny_runner, speech, 4096)[-1]
    assert quiet.top_label != loud.top_label or quiet.probs != loud.probs
    assert loud.level_dbfs > quiet.level_dbfs + 20


def test_live_hop_change_and_bad_values(tiny_runner: ModelRunner, speech: np.ndarray) -> None:
    """set_hop applies from the next window; out-of-range values are ConfigErrors."""
    analyzer = Analyzer(tiny_runner.predict, tiny_runner.spec)
    frames = analyzer.push(AudioBlock(0, speech[:16_000], 0.0))
    analyzer.set_hop(0.5)
    frames += analyzer.push(AudioBlock(16_000, speech[16_000:32_000], 0.0))
    assert [f.end_s for f in frames] == [0.25, 0.5, 0.75, 1.0, 1.5, 2.0]
    with pytest.raises(ConfigError, match=r"allowed is 0\.05 to 2\.0 s"):
        analyzer.set_hop(0.0)
    with pytest.raises(ConfigError, match="smoothing"):
        analyzer.set_smoothing(-1)


def test_ema_time_constant_and_unvoiced_hold() -> None:
    """After one time constant a step is ~63 % through; unvoiced windows hold the estimate."""
    ema = EmaSmoother(2, tau_s=1.0)
    ema.update(np.array([1.0, 0.0]), 0.5, voiced=True)
    state = ema.update(np.array([0.0, 1.0]), 1.0, voiced=True)
    assert state[1] == pytest.approx(1 - np.exp(-1), rel=1e-6)
    held = ema.update(np.array([1.0, 0.0]), 0.5, voiced=False)
    np.testing.assert_array_equal(held, state)
    assert EmaSmoother(2, 0.0).update(np.array([0.3, 0.7]), 0.5, True).tolist() == [0.3, 0.7]


def _flat_model(top: float) -> tuple[object, ModelSpec]:
    """A model that always answers ``top`` for 'happy' and shares the rest equally."""
    labels = ("neutral", "happy", "sad", "angry")
    rest = (1.0 - top) / 3

    def predict(x: np.ndarray) -> Prediction:
        probs = np.tile([rest, top, rest, rest], (len(x), 1)).astype(np.float32)
        return Prediction(probs, None)

    meta = {"labels": json.dumps(labels), "sample_rate": "16000", "window_s": "2.0",
            "hop_s": "0.5", "model_version": "flat", "uncertain_below": "0.4"}
    return predict, parse_metadata(meta)


@pytest.mark.parametrize(("top", "uncertain"), [(0.3, True), (0.6, False)])
def test_low_confidence_speech_is_uncertain_not_a_label(
    speech: np.ndarray, top: float, uncertain: bool
) -> None:
    """Below the model's calibrated threshold a voiced frame says uncertain and names nothing."""
    predict, spec = _flat_model(top)
    frames = Analyzer(predict, spec).push(AudioBlock(0, speech, 0.0))  # type: ignore[arg-type]
    voiced = [f for f in frames if f.voiced]
    assert voiced, "the speech-like signal must give voiced frames"
    for f in voiced:
        assert f.uncertain is uncertain
        assert f.top_label == (None if uncertain else "happy")
        assert f.to_dict()["uncertain"] is uncertain
    assert not any(f.uncertain for f in frames if not f.voiced)
    # the analyzer setting overrides the model's value; 0 turns the state off
    off = Analyzer(predict, spec, AnalyzerConfig(uncertain_below=0.0))  # type: ignore[arg-type]
    assert not any(f.uncertain for f in off.push(AudioBlock(0, speech, 0.0)))


@pytest.mark.parametrize("raw", ["1.0", "-0.1", "nan", "high"])
def test_bad_uncertain_threshold_in_metadata_is_a_contract_error(raw: str) -> None:
    meta = {"labels": '["neutral", "sad"]', "sample_rate": "16000", "window_s": "2.0",
            "hop_s": "0.5", "model_version": "x", "uncertain_below": raw}
    with pytest.raises(ModelContractError, match=r"uncertain_below.*probability"):
        parse_metadata(meta, "m.onnx")


def test_session_prior_corrects_after_speech_and_forgets_after_silence(
    speech: np.ndarray,
) -> None:
    """A voice the model always hears as "happy": once 20 voiced windows were heard the frames
    are corrected (happy no longer dominates) and say so; a minute without speech forgets it."""
    predict, spec = _flat_model(0.6)
    analyzer = Analyzer(predict, spec, AnalyzerConfig(session_prior=True))  # type: ignore[arg-type]
    talk = np.concatenate([speech] * 3)
    frames = analyzer.push(AudioBlock(0, talk, 0.0))
    voiced = [f for f in frames if f.voiced]
    assert len(voiced) > 20
    assert not any(f.session_prior for f in voiced[:19])
    assert voiced[-1].session_prior and voiced[-1].to_dict()["session_prior"] is True
    assert voiced[-1].probs[1] < 0.45 < voiced[0].probs[1]
    quiet = np.zeros(16000 * 65, dtype=np.float32)
    later = analyzer.push(AudioBlock(len(talk), np.concatenate([quiet, speech]), 0.0))
    assert not any(f.session_prior for f in later if f.voiced)
    assert analyzer.session_prior is not None and analyzer.session_prior.windows < 20


def test_prompted_enrolment_of_a_speaker_relative_model_is_embedded_relative_to_its_reading(
    speech: np.ndarray,
) -> None:
    """The prompted windows are kept and embedded again with the finished neutral reading's
    reference, whatever reference (none here) the analyzer fed while they were read."""
    from streamser.core.enrolment import EnrolmentConfig

    labels = ("neutral", "happy", "sad", "angry")
    calls: list[object] = []

    def predict(x: np.ndarray, reference: np.ndarray | None = None) -> Prediction:
        calls.append(reference)
        shift = 0.0 if reference is None else float(reference[0])
        level = np.abs(x).mean(axis=1, keepdims=True)
        emb = np.hstack([level - shift, np.ones_like(level)]).astype(np.float32)
        probs = np.full((len(x), 4), 0.25, dtype=np.float32)
        return Prediction(probs, emb, np.hstack([level] * 3).astype(np.float32))

    head = {"head_weight": np.zeros((4, 2)).tolist(), "head_bias": [0.0] * 4, "scale": 16.0,
            "ref_mean": [0.0, 1.0]}
    meta = {"labels": json.dumps(labels), "sample_rate": "16000", "window_s": "2.0",
            "hop_s": "0.5", "model_version": "rel", "speaker_reference": "band_mean",
            "speaker_norm": json.dumps(head)}
    spec = parse_metadata(meta)
    analyzer = Analyzer(predict, spec)  # type: ignore[arg-type]
    audio = np.tile(speech, 4)
    collector = analyzer.start_enrolment(EnrolmentConfig(
        target_speech_s=3.0, min_speech_s=2.0, emotions=("happy",), emotion_speech_s=4.0))
    analyzer.push(AudioBlock(0, audio, 0.0))
    result = collector.finish()
    assert set(result.samples) == {"neutral", "happy"}
    assert result.reference is not None
    again = analyzer.relative_enrolment(result)
    for label, emb in again.embeddings.items():
        np.testing.assert_allclose(emb[:, 0],
                                   result.embeddings[label][:, 0] - result.reference[0],
                                   atol=1e-6)
    assert calls[-1] is result.reference  # re-embedded with the reading's reference
    # nothing is kept for a neutral-only enrolment: there is nothing to re-embed
    assert not analyzer.start_enrolment(EnrolmentConfig())._keep_windows
