"""The calibration measurement end to end on the unseen RAVDESS actors 19-20 (shipped model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import corpora_root

from streamser.resources import default_model_path
from streamser.training.calib_data import scan
from streamser.training.calib_eval import ENROL_SECONDS, PROFILE_AND_PRIOR, main


@pytest.mark.corpora
@pytest.mark.slow
def test_measurement_writes_every_method_and_never_scores_enrolment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--out-dir gets MODEL.json and MODEL.md with a UA per method and set; a re-run reads
    the window cache; enrolment never exceeds the neutral speech the other clips hold."""
    root = corpora_root()
    if root is None:
        pytest.skip("corpora folder absent (set STREAMSER_CORPORA)")
    monkeypatch.setenv("STREAMSER_CORPORA", str(root))
    monkeypatch.setenv("STREAMSER_CALIB_CACHE", str(tmp_path / "cache"))
    model = default_model_path()
    args = ["--model", str(model), "--speakers", "ravdess=19,20", "--out-dir", str(tmp_path)]
    assert main(args) == 0
    [written] = list(tmp_path.glob("*.json"))
    result = json.loads(written.read_text())
    assert set(result["sets"]) == {"ravdess/4", "ravdess/8"}
    rows = result["methods"]
    assert rows[:3] == ["none", "running", "session prior"] and rows[-1] == "oracle"
    assert len([r for r in rows if r.startswith("neutral") and r.endswith("[prior]")]) == \
        len(ENROL_SECONDS)
    assert PROFILE_AND_PRIOR in rows  # what `live --profile` does: profile, then session prior
    for body in result["sets"].values():
        assert all(0.0 < ua <= 1.0 for ua in body["ua"].values())
        assert body["speakers"] == 2
        # 4 neutral clips per actor, one of them possibly scored: at most ~3 clips of speech
        assert max(body["enrol_seconds"].values()) < 8.0
    assert result["sets"]["ravdess/8"]["clips"] == 120
    assert written.with_suffix(".md").read_text().count("| neutral 20s [prior] |") == 1
    cache = list((tmp_path / "cache").rglob("ravdess.npz"))
    assert len(cache) == 1
    assert len(scan("ravdess", ["19", "20"], root)) == 120
    assert main(args) == 0  # from the cache
