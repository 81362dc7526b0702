"""Calibration core: adaptation maths and the enrolment collector's quality checks (no threads)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import soundfile as sf
from conftest import REPO, speechlike

from streamser.core.adapt import (
    Adaptation,
    build_adaptation,
    default_method,
    head_logits,
)
from streamser.core.enrolment import (
    EnrolmentCollector,
    EnrolmentConfig,
    EnrolmentError,
)
from streamser.core.speaker_norm import SpeakerNormParams

LABELS = ("neutral", "happy", "sad", "angry")


def params(seed: int = 0, dim: int = 6) -> SpeakerNormParams:
    rng = np.random.default_rng(seed)
    ref = rng.normal(size=dim)
    meta = {"speaker_norm": json.dumps({
        "head_weight": rng.normal(size=(len(LABELS), dim)).tolist(),
        "head_bias": rng.normal(size=len(LABELS)).tolist(), "scale": 16.0,
        "ref_mean": (ref / np.linalg.norm(ref) * 0.3).tolist()}), "temperature": "1"}
    parsed = SpeakerNormParams.from_metadata(meta, len(LABELS))
    assert parsed is not None
    return parsed


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def model_probs(p: SpeakerNormParams, e: np.ndarray) -> np.ndarray:
    z = head_logits(p, e)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


# --------------------------------------------------------------------------- adaptation

def test_prior_makes_the_enrolled_neutral_read_more_neutral() -> None:
    """A voice the model hears as 'sad' when neutral is pulled towards neutral, not past it."""
    p = params()
    sad_dir = unit(p.head_weight[2])
    rng = np.random.default_rng(1)
    neutral_reading = unit(sad_dir + 0.2 * rng.normal(size=(30, 6)))
    before = model_probs(p, neutral_reading).mean(axis=0)
    a = build_adaptation(p, LABELS, "prior", {"neutral": neutral_reading})
    after = a.probs(p, neutral_reading).mean(axis=0)
    assert after[0] > before[0] and after[2] < before[2]
    assert np.allclose(a.shift, 0) and a.prototypes is None


def test_mean_with_the_reference_as_enrolment_changes_nothing() -> None:
    """An enrolment whose mean is the training mean leaves the model's own probabilities."""
    p = params(2)
    rng = np.random.default_rng(3)
    noise = rng.normal(size=(20, 6)) * 0.2
    enrol = noise - noise.mean(axis=0) + p.ref_mean
    windows = unit(rng.normal(size=(5, 6)))
    a = build_adaptation(p, LABELS, "mean", {"neutral": enrol})
    np.testing.assert_allclose(a.probs(p, windows), model_probs(p, windows), atol=1e-9)


def test_prototypes_recognise_the_enrolled_emotions() -> None:
    """With one sentence per emotion, new windows near an emotion's sentence take its label
    when the model's own head is unsure."""
    strong = params(4)
    p = SpeakerNormParams(strong.head_weight * 0.05, strong.head_bias * 0.05, strong.scale,
                          strong.ref_mean, strong.temperature)
    rng = np.random.default_rng(5)
    centres = unit(rng.normal(size=(4, 6)))
    enrol = {lab: unit(centres[i] + 0.05 * rng.normal(size=(6, 6)))
             for i, lab in enumerate(LABELS)}
    a = build_adaptation(p, LABELS, "prototypes", enrol)
    assert a.prototype_labels == (0, 1, 2, 3)
    for i in range(4):
        probe = unit(centres[i] + 0.05 * rng.normal(size=(3, 6)))
        assert (a.probs(p, probe).argmax(axis=1) == i).all()
    assert default_method(enrol) == "prototypes"
    assert default_method({"neutral": enrol["neutral"]}) == "prior"


def test_adaptation_round_trips_through_json_and_rejects_bad_shapes() -> None:
    """to_dict/from_dict is lossless to 1e-6; wrong shapes and methods raise ValueError."""
    p = params(6)
    rng = np.random.default_rng(7)
    enrol = {lab: unit(rng.normal(size=(4, 6))) for lab in LABELS[:3]}
    a = build_adaptation(p, LABELS, "prototypes", enrol)
    body = json.loads(json.dumps(a.to_dict()))
    b = Adaptation.from_dict(body, 6, len(LABELS))
    windows = unit(rng.normal(size=(4, 6)))
    np.testing.assert_allclose(a.probs(p, windows), b.probs(p, windows), atol=1e-4)
    for broken in ({**body, "bias": [0.0]}, {**body, "method": "magic"},
                   {**body, "prototype_labels": [0, 1, 9]}, {**body, "shift": [1e400] * 6}):
        with pytest.raises(ValueError):
            Adaptation.from_dict(broken, 6, len(LABELS))
    with pytest.raises(ValueError, match="neutral"):
        build_adaptation(p, LABELS, "prior", {"happy": enrol["happy"]})
    with pytest.raises(ValueError, match="no voiced"):
        build_adaptation(p, LABELS, "prior", {"neutral": np.zeros((0, 6))})


# --------------------------------------------------------------------------- enrolment

def demo_voice(actor: str) -> np.ndarray:
    """One demo actor's clips (RAVDESS 19 = male, 20 = female), 0.35 s apart."""
    audio, rate = sf.read(REPO / "assets" / "demo.flac", dtype="float32")
    parts = []
    with open(REPO / "assets" / "demo_cues.csv", encoding="utf-8") as f:
        for cue in csv.DictReader(f):
            if cue["actor"] in actor:
                seg = audio[int(float(cue["start_s"]) * rate):int(float(cue["end_s"]) * rate)]
                parts += [seg, np.zeros(int(0.35 * rate), np.float32)]
    return np.concatenate(parts)


def collect(audio: np.ndarray, block: int = 4000,
            config: EnrolmentConfig | None = None) -> EnrolmentCollector:
    col = EnrolmentCollector(config)
    for i in range(0, len(audio), block):
        col.push_audio(audio[i:i + block])
        col.push_window(np.ones(4), voiced=True)
    return col


def codes(col: EnrolmentCollector) -> list[str]:
    return [i.code for i in col.issues()]


def test_a_clean_single_voice_enrols() -> None:
    """About 30 s of one demo voice: no issue, speech time close to the reading time."""
    audio = demo_voice("20")
    col = collect(audio)
    assert codes(col) == []
    result = col.finish()
    assert 0.6 * len(audio) / 16_000 < result.speech_s <= len(audio) / 16_000
    assert col.progress.done and result.windows > 0
    assert 150 < result.pitch_hz < 300  # a female voice


def test_speech_clock_does_not_depend_on_block_size() -> None:
    """The same audio in 256- and 4096-sample blocks gives the same speech time."""
    audio = demo_voice("19")[: 16_000 * 12]
    assert collect(audio, 256).progress.speech_s == pytest.approx(
        collect(audio, 4096).progress.speech_s)


@pytest.mark.parametrize(("gain", "expected"), [(0.01, "too_quiet"), (12.0, "clipped")])
def test_level_problems_are_named(gain: float, expected: str) -> None:
    """A far-away or over-driven voice is refused with the reason."""
    audio = np.clip(demo_voice("20") * gain, -1, 1).astype(np.float32)
    col = collect(audio)
    assert expected in codes(col)
    with pytest.raises(EnrolmentError) as info:
        col.finish()
    assert expected in [i.code for i in info.value.issues]


def test_two_voices_are_refused_one_voice_is_not() -> None:
    """A voice alternating with the same voice an octave lower (played at half speed, like a
    man after a woman) is 'several_voices'; either voice alone is not."""
    import soxr

    voice = demo_voice("20")[: 16_000 * 12]
    low = soxr.resample(voice, 8_000, 16_000)  # every sample twice as long: f0 halves
    chunks = [voice[i:i + 48_000] for i in range(0, len(voice), 48_000)]
    low_chunks = [low[i:i + 48_000] for i in range(0, len(low), 48_000)]
    pairs = zip(chunks, low_chunks[: len(chunks)], strict=True)
    both = np.concatenate([c for pair in pairs for c in pair])
    assert "several_voices" in codes(collect(both))
    assert "several_voices" not in codes(collect(voice))
    assert "several_voices" not in codes(collect(low[: 16_000 * 20]))


def test_silence_and_short_speech_are_refused() -> None:
    """Silence: no speech; 4 s of speech: too short, saying how much was heard."""
    silence = np.random.default_rng(0).normal(0, 1e-4, 16_000 * 10).astype(np.float32)
    col = EnrolmentCollector()
    col.push_audio(silence)
    col.push_window(np.ones(4), voiced=False)
    assert codes(col) == ["no_speech"]
    short = collect(speechlike(4.0))
    assert codes(short) == ["too_short"]
    assert "needed" in short.issues()[0].message


def test_progress_reports_the_level_and_fraction() -> None:
    """Progress carries the latest block level and the fraction of the target."""
    col = collect(demo_voice("20")[: 16_000 * 5], config=EnrolmentConfig(target_speech_s=10.0,
                                                                         min_speech_s=2.0))
    prog = col.progress.to_dict()
    assert 0.2 < prog["fraction"] < 0.6  # type: ignore[operator]
    assert -80 < prog["level_dbfs"] < 0  # type: ignore[operator]
    assert not col.progress.done


def test_config_is_checked() -> None:
    """min_speech_s above the target is refused."""
    with pytest.raises(ValueError):
        EnrolmentConfig(target_speech_s=5, min_speech_s=8)



def test_prompted_phases_file_windows_by_their_position() -> None:
    """Passage then one emotion: each window goes to the phase its middle falls in, never
    across a boundary, whatever the order audio and windows arrive in (one big block here)."""
    audio = demo_voice("20")[: 16_000 * 14]
    config = EnrolmentConfig(target_speech_s=4.0, min_speech_s=2.0, emotions=("happy",),
                             emotion_speech_s=2.0)
    col = EnrolmentCollector(config, start_sample=16_000)  # enrolment began 1 s into the stream
    col.push_audio(audio)
    assert col.progress.done and col.progress.phase is None
    hop, window = 8_000, 32_000
    for end in range(hop, 16_000 + len(audio) + 1, hop):
        start = max(0, end - window)
        col.push_window(np.array([start, end], dtype=np.float64), True, start, end)
    result = col.finish()
    neutral, happy = result.embeddings["neutral"], result.embeddings["happy"]
    assert len(neutral) >= 4 and len(happy) >= 1
    assert neutral[:, 0].min() >= 16_000  # nothing from before the enrolment
    assert neutral[:, 0].max() < happy[:, 0].min()  # no window in two phases
    assert happy[:, 1].max() <= 16_000 + len(audio)
    assert len(neutral) + len(happy) < (16_000 + len(audio)) // hop  # windows after: dropped


# --------------------------------------------------------------------------- speaker-relative

def test_reference_profiles_keep_the_voice_spectrum_and_reject_bad_ones() -> None:
    """A speaker-relative model's enrolment keeps its mean neutral band spectrum: ``reference``
    changes no probability by itself, only that method carries it, JSON round-trips it."""
    p = params(3)
    rng = np.random.default_rng(4)
    neutral = unit(rng.normal(size=(8, 6)))
    ref = rng.normal(size=64)
    assert default_method({"neutral": neutral}, ref) == "reference"
    assert default_method({"neutral": neutral}) == "prior"
    a = build_adaptation(p, LABELS, "reference", {"neutral": neutral}, ref)
    np.testing.assert_allclose(a.reference, ref)
    np.testing.assert_allclose(a.probs(p, neutral), model_probs(p, neutral), atol=1e-9)
    # the other methods work on the model's own embeddings, as measured: no reference fed
    assert build_adaptation(p, LABELS, "prior", {"neutral": neutral}, ref).reference is None
    body = json.loads(json.dumps(a.to_dict()))
    np.testing.assert_allclose(Adaptation.from_dict(body, 6, len(LABELS)).reference, ref,
                               atol=1e-6)
    for broken in ({**body, "reference": None}, {**body, "reference": [[1.0]]},
                   {**body, "reference": [1e400]}):
        with pytest.raises(ValueError):
            Adaptation.from_dict(broken, 6, len(LABELS))
    with pytest.raises(ValueError, match="speaker-relative"):
        build_adaptation(p, LABELS, "reference", {"neutral": neutral})


def test_enrolment_reference_is_the_neutral_phase_band_mean() -> None:
    audio = demo_voice("20")[: 16_000 * 14]
    config = EnrolmentConfig(target_speech_s=4.0, min_speech_s=2.0, emotions=("happy",),
                             emotion_speech_s=2.0)
    col = EnrolmentCollector(config)
    col.push_audio(audio)
    hop, window = 8_000, 32_000
    for end in range(hop, len(audio) + 1, hop):
        start = max(0, end - window)
        col.push_window(np.array([float(end)]), True, start, end,
                        band_mean=np.full(3, float(end)))
    result = col.finish()
    assert result.reference is not None and result.reference.shape == (3,)
    # exactly the windows filed under the neutral passage, none of the happy phase's
    np.testing.assert_allclose(result.reference, result.embeddings["neutral"][:, 0].mean())
    assert result.reference[0] < result.embeddings["happy"][:, 0].min()
    no_model = collect(audio)
    assert no_model.finish().reference is None


def test_reference_prototypes_keep_spectrum_and_prototypes_without_a_shift() -> None:
    """Neutral + prompted emotions of a speaker-relative model: the reference is fed and the
    label means of the reference-relative embeddings vote, unshifted."""
    p = params(5)
    rng = np.random.default_rng(5)
    centres = unit(rng.normal(size=(2, 6)))
    enrol = {"neutral": unit(centres[0] + 0.05 * rng.normal(size=(8, 6))),
             "sad": unit(centres[1] + 0.05 * rng.normal(size=(4, 6)))}
    ref = rng.normal(size=64)
    assert default_method(enrol, ref) == "reference_prototypes"
    assert default_method(enrol) == "prototypes"
    a = build_adaptation(p, LABELS, "reference_prototypes", enrol, ref)
    assert a.prototype_labels == (0, 2) and not a.shift.any()
    np.testing.assert_allclose(a.reference, ref)
    np.testing.assert_allclose(a.prototypes, unit(np.stack([enrol["neutral"].mean(0),
                                                             enrol["sad"].mean(0)])))
    # the prototypes pull a window near the sad centre towards sad, against the model alone
    window = centres[1:2]
    assert a.probs(p, window)[0, 2] > model_probs(p, window)[0, 2]
    body = json.loads(json.dumps(a.to_dict()))
    back = Adaptation.from_dict(body, 6, len(LABELS))
    assert back.method == "reference_prototypes" and back.prototype_labels == (0, 2)
    for broken in ({**body, "reference": None}, {**body, "prototypes": None,
                                                  "prototype_labels": []}):
        with pytest.raises(ValueError):
            Adaptation.from_dict(broken, 6, len(LABELS))
    with pytest.raises(ValueError, match="speaker-relative"):
        build_adaptation(p, LABELS, "reference_prototypes", enrol)


def test_kept_windows_line_up_with_their_embeddings() -> None:
    audio = demo_voice("20")[: 16_000 * 14]
    config = EnrolmentConfig(target_speech_s=4.0, min_speech_s=2.0, emotions=("happy",),
                             emotion_speech_s=2.0)
    hop, window = 8_000, 32_000
    results = []
    for keep in (True, False):
        col = EnrolmentCollector(config, keep_windows=keep)
        col.push_audio(audio)
        for end in range(hop, len(audio) + 1, hop):
            start = max(0, end - window)
            col.push_window(np.array([float(end)]), True, start, end,
                            samples=np.full(4, float(end), dtype=np.float32))
        results.append(col.finish())
    kept, plain = results
    assert set(kept.samples) == set(kept.embeddings) == {"neutral", "happy"}
    for label, emb in kept.embeddings.items():
        np.testing.assert_array_equal(kept.samples[label][:, 0], emb[:, 0])
    assert plain.samples == {}
