"""Speaker-independent folds."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamser.training.corpora import Utterance
from streamser.training.folds import (
    DEMO_SPEAKERS,
    Fold,
    SpeakerLeakError,
    check_speaker_independent,
    ravdess_folds,
    speaker_folds,
)


def _utts(speakers: dict[str, int]) -> list[Utterance]:
    return [
        Utterance(Path(f"{spk}_{i}.wav"), "happy", spk, spk.split(":")[0])
        for spk, n in speakers.items()
        for i in range(n)
    ]


def test_ravdess_protocol_is_fixed() -> None:
    """Five folds of four consecutive actors covering 01-20 exactly once."""
    folds = ravdess_folds()
    assert sorted(folds[0].test_speakers) == [
        "ravdess:01",
        "ravdess:02",
        "ravdess:03",
        "ravdess:04",
    ]
    assert sorted(folds[4].test_speakers) == [f"ravdess:{a}" for a in (17, 18, 19, 20)]
    union = set().union(*(f.test_speakers for f in folds))
    assert union == {f"ravdess:{a:02d}" for a in range(1, 21)}
    assert DEMO_SPEAKERS <= folds[4].test_speakers


def test_ravdess_split_keeps_extra_corpus_in_train() -> None:
    """TESS speakers are never tested in the RAVDESS protocol; exclude drops speakers."""
    utts = _utts({**{f"ravdess:{a:02d}": 3 for a in range(1, 21)}, "tess:OAF": 5})
    train, test = ravdess_folds()[1].split(utts)
    assert {u.speaker for u in test} == {f"ravdess:{a:02d}" for a in (5, 6, 7, 8)}
    assert len(test) == 12 and len(train) == 16 * 3 + 5
    train, test = ravdess_folds()[4].split(utts, exclude=DEMO_SPEAKERS)
    assert not DEMO_SPEAKERS & {u.speaker for u in train + test}
    tr_idx, te_idx = ravdess_folds()[1].indices(utts)
    assert len(tr_idx) + len(te_idx) == len(utts) and not set(tr_idx) & set(te_idx)


def test_speaker_folds_disjoint_balanced_seeded() -> None:
    """Every speaker is tested exactly once; counts are balanced; the seed is reproducible."""
    counts = {f"c:{i}": 10 + (i % 3) for i in range(12)}
    utts = _utts(counts)
    folds = speaker_folds(utts, k=4, seed=7)
    assert len(folds) == 4
    seen = [s for f in folds for s in f.test_speakers]
    assert sorted(seen) == sorted(counts)
    sizes = [sum(counts[s] for s in f.test_speakers) for f in folds]
    assert max(sizes) - min(sizes) <= 3
    assert speaker_folds(utts, k=4, seed=7) == folds
    assert speaker_folds(utts, k=4, seed=8) != folds
    for fold in folds:
        train, test = fold.split(utts)
        assert len(train) + len(test) == len(utts)


def test_speaker_folds_rejects_bad_k() -> None:
    """k must be between 2 and the number of speakers."""
    utts = _utts({"a:1": 2, "a:2": 2})
    with pytest.raises(ValueError, match="k=3"):
        speaker_folds(utts, k=3)
    with pytest.raises(ValueError):
        speaker_folds(utts, k=1)


def test_leak_check_raises() -> None:
    """A speaker on both sides is a protocol bug and raises."""
    utts = _utts({"a:1": 2, "a:2": 2})
    check_speaker_independent(utts[:2], utts[2:])
    with pytest.raises(SpeakerLeakError, match="a:1"):
        check_speaker_independent(utts[:3], utts[1:])
    assert Fold(0, frozenset({"a:2"})).split(utts)[1] == utts[2:]
