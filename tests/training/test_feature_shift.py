"""The front-end feature-shift measurement, on the demo's real speech instead of the corpora."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from streamser.training import experiments
from streamser.training.corpora import Utterance
from streamser.training.feature_shift import feature_shift
from streamser.training.frontend import FrontEndConfig


@pytest.mark.slow
def test_feature_shift_ranks_front_ends_and_leaves_tilt_invisible(monkeypatch, demo_speech):
    clips = [demo_speech[i * 3 * 16_000 : i * 3 * 16_000 + 40_000] for i in range(4)]
    utts = [Utterance(Path(f"{i}.flac"), "neutral", "ravdess:19", "ravdess") for i in range(4)]
    monkeypatch.setattr(experiments, "load_clips", lambda corpus: (utts, clips * 15))
    table = feature_shift({"plain": FrontEndConfig(norm="band", top_db=60.0),
                           "steady": FrontEndConfig(norm="band", top_db=40.0, denoise=2.0)},
                          n_clips=4)
    assert set(table) == {"plain", "steady"}
    assert table["steady"]["pink 20 dB"] < 0.7 * table["plain"]["pink 20 dB"]
    assert table["plain"]["tilt -10 dB"] < 0.05  # the band front end removes a fixed tilt
    assert all(np.isfinite(v) for row in table.values() for v in row.values())
