"""Speaker normalisation: a pure post-processing of the embedding that adapts to a voice."""

from __future__ import annotations

import json

import numpy as np
import pytest

from streamser.core.analyzer import Analyzer, AnalyzerConfig
from streamser.core.speaker_norm import SpeakerNormalizer, SpeakerNormParams
from streamser.errors import ConfigError, ModelContractError
from streamser.model import ModelRunner


def params(rng: np.random.Generator, labels: int = 4, dim: int = 6) -> SpeakerNormParams:
    ref = rng.normal(size=dim)
    meta = {"speaker_norm": json.dumps({
        "head_weight": rng.normal(size=(labels, dim)).tolist(),
        "head_bias": rng.normal(size=labels).tolist(), "scale": 16.0,
        "ref_mean": (ref / np.linalg.norm(ref) * 0.5).tolist()}), "temperature": "0.8"}
    parsed = SpeakerNormParams.from_metadata(meta, labels)
    assert parsed is not None
    return parsed


def model_probs(p: SpeakerNormParams, e: np.ndarray) -> np.ndarray:
    logits = (p.scale * p.head_weight @ e + p.head_bias) / p.temperature
    z = np.exp(logits - logits.max())
    return z / z.sum()


def test_reference_statistics_reproduce_the_model() -> None:
    """With mu equal to the training mean, re-scoring is the model's own head."""
    p = params(np.random.default_rng(0))
    e = np.random.default_rng(1).normal(size=6)
    e /= np.linalg.norm(e)
    got = SpeakerNormalizer(p).score(e, mu=p.ref_mean)
    np.testing.assert_allclose(got, model_probs(p, e), rtol=1e-9)


def test_a_constant_speaker_offset_is_removed() -> None:
    """A voice that shifts every embedding by the same offset is scored as if it did not."""
    rng = np.random.default_rng(2)
    p = params(rng)
    noise = rng.normal(size=(40, 6)) * 0.3
    clean = noise - noise.mean(axis=0) + p.ref_mean  # a speaker whose mean is the reference
    offset = np.array([0.8, -0.5, 0.3, 0.0, 0.2, -0.4])
    norm = SpeakerNormalizer(p, min_windows=40, max_windows=40)
    for e in clean + offset:
        norm.update(e, voiced=True)
    for e in clean[:5]:
        unit = e / np.linalg.norm(e)
        np.testing.assert_allclose(norm.score(e + offset), model_probs(p, unit), atol=1e-6)


def test_waits_for_speech_and_ignores_silence() -> None:
    """Nothing changes until min_windows voiced windows; unvoiced windows never count."""
    p = params(np.random.default_rng(3))
    norm = SpeakerNormalizer(p, min_windows=3)
    e = np.ones(6)
    assert norm.update(e, voiced=False) is None and norm.windows == 0
    assert norm.update(e, True) is None and norm.update(e, True) is None
    out = norm.update(e, True)
    assert out is not None and norm.active and out.sum() == pytest.approx(1.0)
    norm.reset()
    assert not norm.active


def test_malformed_metadata_is_refused() -> None:
    """Wrong shapes or broken JSON give a ModelContractError saying what was expected."""
    with pytest.raises(ModelContractError, match="not a JSON object"):
        SpeakerNormParams.from_metadata({"speaker_norm": "{"}, 4)
    bad = json.dumps({"head_weight": [[1.0]], "head_bias": [0.0], "scale": 1, "ref_mean": [0.0]})
    with pytest.raises(ModelContractError, match=r"expected \(4, D\)"):
        SpeakerNormParams.from_metadata({"speaker_norm": bad}, 4)
    assert SpeakerNormParams.from_metadata({}, 4) is None


def test_analyzer_refuses_speaker_norm_without_metadata(tiny_runner: ModelRunner) -> None:
    """Asking for it on a model that cannot do it is a clear configuration error."""
    with pytest.raises(ConfigError, match="no 'speaker_norm' metadata"):
        Analyzer(tiny_runner.predict, tiny_runner.spec, AnalyzerConfig(speaker_norm=True))


def test_shipped_model_with_speaker_norm_end_to_end(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`analyze --speaker-norm` on the demo audio: frames switch to normalised after speech."""
    from pathlib import Path

    from streamser.cli import main
    from streamser.model import default_model_path

    try:
        model = default_model_path()
    except ModelContractError:
        pytest.skip("no shipped model in models/")
    demo = Path(__file__).resolve().parent.parent / "assets" / "demo.flac"
    out = tmp_path / "f.jsonl"
    assert main(["analyze", str(demo), "--out", str(out), "--speaker-norm",
                 "--model", str(model)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    flags = [r["speaker_norm"] for r in rows]
    assert not flags[0] and flags[-1]
    first = flags.index(True)
    assert sum(r["voiced"] for r in rows[: first + 1]) == 10
