"""Several contract files merged into one: the geometric mean of the members, one contract."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from streamser.training.ensemble import merge_onnx  # noqa: E402
from streamser.training.export import export_model  # noqa: E402
from streamser.training.frontend import FrontEndConfig  # noqa: E402
from streamser.training.nets import ModelConfig, SERModel  # noqa: E402

LABELS = ("neutral", "happy", "sad")
TINY = ModelConfig(width=0.125, blocks=(1, 1, 1), emb_dim=16)
META = {"sample_rate": "16000", "window_s": "2.0", "hop_s": "0.5", "temperature": "1.5"}


def _member(tmp_path: Path, seed: int, top_db: float, **meta: str) -> Path:
    """A tiny speaker-relative contract file with random weights."""
    torch.manual_seed(seed)
    model = SERModel(len(LABELS), TINY, FrontEndConfig(norm="band", top_db=top_db)).eval()
    return export_model(model, tmp_path / f"m{seed}.onnx", LABELS,
                        {**META, "model_version": f"m-{seed}", **meta}, temperature=1.5,
                        reference=True)


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two members with different log-mel floors (60 and 40 dB under the window's peak)."""
    tmp = tmp_path_factory.mktemp("members")
    return _member(tmp, 0, 60.0), _member(tmp, 1, 40.0)


def _speech(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(32_000) / 16_000
    rows = [0.3 * np.sin(2 * np.pi * (150 + 40 * i) * t) * (1 + np.sin(2 * np.pi * 3 * t))
            + 0.01 * rng.standard_normal(len(t)) for i in range(n)]
    return np.stack(rows).astype(np.float32)


def test_the_merged_file_is_the_members_geometric_mean_and_loads(
    members: tuple[Path, Path], tmp_path: Path
) -> None:
    """Members with different log-mel floors: at the members' temperature (1.5) the ensemble's
    probabilities are the normalised geometric mean of theirs (with and without a voice
    reference), its embedding theirs side by side, its band mean theirs; the runtime loader
    accepts it."""
    from streamser.model import ModelRunner

    a, b = members
    out = merge_onnx([a, b], tmp_path / "ab.onnx", "ab-1", temperature=1.5)
    x = _speech(3, 0)
    runners = [ModelRunner.load(p, use_gpu=False) for p in (a, b, out)]
    assert runners[2].spec.speaker_reference and runners[2].spec.labels == LABELS
    reference = np.linspace(-1, 1, 64).astype(np.float32)
    for ref in (None, reference):
        pa, pb, pe = (r.predict(x, reference=ref) for r in runners)
        geo = np.exp((np.log(pa.probs) + np.log(pb.probs)) / 2)
        np.testing.assert_allclose(pe.probs, geo / geo.sum(axis=1, keepdims=True), atol=1e-5)
        assert np.abs(pa.probs - pb.probs).max() > 1e-3  # the members do differ
        assert pe.embedding is not None and pa.embedding is not None and pb.embedding is not None
        np.testing.assert_allclose(pe.embedding, np.concatenate([pa.embedding, pb.embedding], 1),
                                   atol=1e-6)
        assert pe.band_mean is not None and pa.band_mean is not None
        np.testing.assert_allclose(pe.band_mean, pa.band_mean, atol=1e-5)


def test_an_ensemble_temperature_flattens_the_merged_probabilities(
    members: tuple[Path, Path], tmp_path: Path
) -> None:
    from streamser.model import ModelRunner

    a, b = members
    x = _speech(2, 1)
    sharp = ModelRunner.load(merge_onnx([a, b], tmp_path / "t1.onnx", "t1"), use_gpu=False)
    flat = ModelRunner.load(merge_onnx([a, b], tmp_path / "t3.onnx", "t3", temperature=3.0),
                            use_gpu=False)
    assert flat.predict(x).probs.max() < sharp.predict(x).probs.max()
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "t3.onnx")).metadata_props}
    assert meta["temperature"] == "3.0000" and "ensemble" in meta


def test_members_of_different_contracts_are_refused(
    members: tuple[Path, Path], tmp_path: Path
) -> None:
    a = members[0]
    b = _member(tmp_path, 2, 60.0, hop_s="0.25")
    with pytest.raises(ValueError, match="'hop_s'"):
        merge_onnx([a, b], tmp_path / "x.onnx", "x")
    with pytest.raises(ValueError, match="two or more"):
        merge_onnx([a], tmp_path / "y.onnx", "y")
