"""Signals that should separate right from wrong labels, on hand-built clip scores."""

from __future__ import annotations

import numpy as np

from streamser.training.confidence_eval import SIGNALS, clip_signals, evaluate
from streamser.training.train import ClipScores

LABELS = ("neutral", "happy", "sad", "angry")


def _run(seed: int) -> dict:
    """Right clips: confident, consistent windows; wrong clips: flat, disagreeing windows."""
    rng = np.random.default_rng(seed)
    logits, embs, y = [], [], []
    for i in range(40):
        label = i % 4
        if i % 2 == 0:  # right: every window says ``label`` strongly
            z = np.full((3, 4), -2.0)
            z[:, label] = 3.0 + rng.random(3)
        else:  # wrong: windows split between two other labels, weakly
            z = rng.normal(0.0, 0.1, (3, 4))
            z[0, (label + 1) % 4] += 0.6
            z[1:, (label + 2) % 4] += 0.5
        logits.append(z.astype(np.float32))
        embs.append(rng.normal(size=(3, 8)).astype(np.float32))
        y.append(label)
    return {"scores": ClipScores(LABELS, logits, embs), "y": np.array(y)}


def test_clip_signals_shapes_and_values() -> None:
    run = _run(0)
    head = (np.zeros((3, 8), np.float32), np.array([0.0, 0.0, 5.0], np.float32))  # all "high"
    pred, x = clip_signals(run["scores"], 1.0, head, emb_scale=1.0)
    assert x.shape == (40, len(SIGNALS))
    assert (pred[::2] == run["y"][::2]).all() and (pred[1::2] != run["y"][1::2]).all()
    assert np.allclose(x[::2, SIGNALS.index("window_agreement")], 1.0)
    # Happy and angry imply high arousal, which this head always says; neutral implies normal.
    arousal = x[:, SIGNALS.index("arousal_agreement")]
    high = np.isin(pred, [LABELS.index("happy"), LABELS.index("angry")])
    assert (arousal[high] > 0.9).all() and (arousal[~high] < 0.1).all()
    assert np.isnan(clip_signals(run["scores"])[1][:, SIGNALS.index("arousal_agreement")]).all()


def test_evaluate_separates_and_cross_fits() -> None:
    result = evaluate({"a": _run(1), "b": _run(2)}, temperature=1.0)
    assert "arousal_agreement" not in result["signals"]  # no head given: left out, not nan
    for row in result["targets"].values():
        assert row["accuracy"] == 0.5
        assert row["top_prob"] == 1.0 and row["window_agreement"] == 1.0
        assert row["learned"] > 0.9  # fitted on the other corpus only
