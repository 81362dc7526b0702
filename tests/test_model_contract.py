"""Model contract: the loader accepts a conforming file and refuses each kind of breach clearly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tiny_model import LABELS, build_tiny_model

from streamser.core.contract import parse_metadata
from streamser.errors import ModelContractError
from streamser.model import ModelRunner


def test_conforming_model_loads_and_predicts(tiny_runner: ModelRunner) -> None:
    """A valid model exposes its spec and returns probabilities and an embedding."""
    spec = tiny_runner.spec
    assert spec.labels == tuple(LABELS) and spec.window_samples == 16_000
    assert spec.hop_samples == 4_000 and spec.model_version == "tiny-test-0"
    out = tiny_runner.predict(np.zeros((3, 16_000), np.float32))
    assert out.probs.shape == (3, 4)
    np.testing.assert_allclose(out.probs.sum(axis=1), 1.0, rtol=1e-5)
    assert out.embedding is not None
    np.testing.assert_allclose(np.linalg.norm(out.embedding, axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"labels": None}, "lacks labels"),
        ({"labels": "neutral,happy"}, "JSON list"),
        ({"labels": json.dumps(["neutral", "bored", "sad", "angry"])}, "unknown labels ['bored']"),
        ({"sample_rate": "8000"}, "expects 8000 Hz"),
        ({"window_s": "two"}, "not a number"),
        ({"hop_s": "-1"}, "positive finite"),
        ({"labels": json.dumps(["neutral", "happy", "sad"])}, "has 4 columns"),
        ({"speaker_reference": "mfcc_mean"}, "only kind of voice reference"),
        ({"speaker_reference": "band_mean"}, "graph lacks ['reference', 'reference_weight', "
                                             "'band_mean']"),
    ],
)
def test_metadata_breaches_are_refused(
    tmp_path: Path, override: dict[str, str | None], message: str
) -> None:
    """Each broken metadata key gives a ModelContractError naming it."""
    path = build_tiny_model(tmp_path / "m.onnx", metadata=override)  # type: ignore[arg-type]
    with pytest.raises(ModelContractError, match=message.replace("[", r"\[").replace("]", r"\]")):
        ModelRunner.load(path)


def test_wrong_input_or_output_names_are_refused(tmp_path: Path) -> None:
    """The graph must take 'waveform' and return 'probs'."""
    with pytest.raises(ModelContractError, match="exactly one input 'waveform'"):
        ModelRunner.load(build_tiny_model(tmp_path / "a.onnx", input_name="audio"))
    with pytest.raises(ModelContractError, match="'probs'"):
        ModelRunner.load(build_tiny_model(tmp_path / "b.onnx", probs_name="scores"))


def test_missing_and_corrupt_files_are_refused(tmp_path: Path) -> None:
    """A missing or non-ONNX file gives a one-line, actionable error."""
    with pytest.raises(ModelContractError, match="does not exist"):
        ModelRunner.load(tmp_path / "nope.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a protobuf" * 10)
    with pytest.raises(ModelContractError, match="not a loadable ONNX model"):
        ModelRunner.load(junk)


def test_parse_metadata_keeps_extra_keys() -> None:
    """Keys beyond the contract are carried along uninterpreted."""
    spec = parse_metadata({"labels": '["sad"]', "sample_rate": "16000", "window_s": "2",
                           "hop_s": "0.5", "model_version": "x", "license": "CC"})
    assert spec.extra == {"license": "CC"} and spec.window_samples == 32_000
