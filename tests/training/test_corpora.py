"""Corpus loaders on synthetic file trees (tiny WAV/FLAC files written with soundfile)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from streamser.errors import ConfigError
from streamser.labels import CANONICAL_LABELS
from streamser.training.corpora import (
    Utterance,
    default_corpora_root,
    load_corpus,
    scan_corpus,
)


def _touch(path: Path, rate: int = 16_000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(160, dtype=np.float32), rate)
    return path


def _by_name(utterances: list[Utterance] | tuple[Utterance, ...]) -> dict[str, Utterance]:
    return {u.path.name: u for u in utterances}


def test_ravdess_speech_only_and_labels(tmp_path: Path) -> None:
    """RAVDESS: emotion from field 3, speaker from field 7; song and video files are counted."""
    _touch(tmp_path / "Actor_19" / "03-01-05-02-01-01-19.wav")
    _touch(tmp_path / "Actor_19" / "03-01-08-01-02-02-19.flac")
    _touch(tmp_path / "Actor_02" / "03-01-01-01-01-01-02.wav")
    _touch(tmp_path / "Actor_02" / "03-02-03-01-01-01-02.wav")  # song
    _touch(tmp_path / "Actor_02" / "notes.wav")
    (tmp_path / "Actor_02" / "README.txt").write_text("not audio")
    scan = scan_corpus("ravdess", tmp_path)
    got = _by_name(scan.utterances)
    assert got["03-01-05-02-01-01-19.wav"] == Utterance(
        tmp_path / "Actor_19" / "03-01-05-02-01-01-19.wav", "angry", "ravdess:19", "ravdess"
    )
    assert got["03-01-08-01-02-02-19.flac"].label == "surprised"
    assert got["03-01-01-01-01-01-02.wav"].speaker == "ravdess:02"
    assert len(got) == 3
    assert scan.n_skipped == 2
    assert any("vocal channel 02" in reason for reason in scan.skipped)


def test_ravdess_all_eight_codes(tmp_path: Path) -> None:
    """The eight RAVDESS emotion codes map onto the eight canonical labels in order."""
    for code in range(1, 9):
        _touch(tmp_path / "Actor_01" / f"03-01-{code:02d}-01-01-01-01.wav")
    labels = [u.label for u in load_corpus("ravdess", tmp_path)]
    assert tuple(labels) == CANONICAL_LABELS


def test_tess_folders_and_misnamed_file(tmp_path: Path) -> None:
    """TESS: speaker and emotion from the folder; OA_bite_neutral is kept as OAF neutral."""
    _touch(tmp_path / "OAF_neutral" / "OA_bite_neutral.flac")
    _touch(tmp_path / "OAF_neutral" / "OAF_back_neutral.flac")
    _touch(tmp_path / "YAF_pleasant_surprise" / "YAF_date_pleasant_surprise.wav")
    _touch(tmp_path / "YAF_fear" / "YAF_dog_fear.wav")
    _touch(tmp_path / "OAF_Sad" / "OAF_dog_sad.wav")
    _touch(tmp_path / "YAF_boredom" / "YAF_dog_boredom.wav")
    scan = scan_corpus("tess", tmp_path)
    got = _by_name(scan.utterances)
    assert got["OA_bite_neutral.flac"].speaker == "tess:OAF"
    assert got["OA_bite_neutral.flac"].label == "neutral"
    assert got["YAF_date_pleasant_surprise.wav"].label == "surprised"
    assert got["YAF_dog_fear.wav"].label == "fearful"
    assert got["OAF_dog_sad.wav"] == Utterance(
        tmp_path / "OAF_Sad" / "OAF_dog_sad.wav", "sad", "tess:OAF", "tess"
    )
    assert len(got) == 5
    assert scan.skipped == {"unmapped emotion 'boredom'": 1}


def test_tess_flat_layout(tmp_path: Path) -> None:
    """Without emotion folders, TESS speaker and emotion come from the file name."""
    _touch(tmp_path / "OA_bite_neutral.wav")
    _touch(tmp_path / "YAF_back_ps.wav")
    got = _by_name(load_corpus("tess", tmp_path))
    assert (got["OA_bite_neutral.wav"].speaker, got["OA_bite_neutral.wav"].label) == (
        "tess:OAF",
        "neutral",
    )
    assert got["YAF_back_ps.wav"].label == "surprised"


def test_cremad(tmp_path: Path) -> None:
    """CREMA-D: speaker_sentence_emotion_level; malformed names are counted."""
    _touch(tmp_path / "AudioWAV" / "1001_DFA_ANG_XX.wav")
    _touch(tmp_path / "AudioWAV" / "1091_TSI_FEA_HI.wav")
    _touch(tmp_path / "AudioWAV" / "1050_IEO_NEU_X.wav")
    _touch(tmp_path / "AudioWAV" / "1050_IEO_BOR_LO.wav")
    _touch(tmp_path / "AudioWAV" / "bad-name.wav")
    scan = scan_corpus("crema-d", tmp_path)
    got = _by_name(scan.utterances)
    assert got["1001_DFA_ANG_XX.wav"] == Utterance(
        tmp_path / "AudioWAV" / "1001_DFA_ANG_XX.wav", "angry", "cremad:1001", "cremad"
    )
    assert got["1091_TSI_FEA_HI.wav"].label == "fearful"
    assert got["1050_IEO_NEU_X.wav"].label == "neutral"
    assert scan.n_skipped == 2


def test_emodb_boredom_skipped_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """EMO-DB: German letters map to canonical labels; boredom (L) is skipped, counted, logged."""
    names = {
        "03a01Wa.wav": "angry",
        "08b02Ea.wav": "disgust",
        "09a05Ab.wav": "fearful",
        "10a07Fa.wav": "happy",
        "11b09Tc.wav": "sad",
        "16a01Nb.wav": "neutral",
    }
    for name in names:
        _touch(tmp_path / "wav" / name)
    _touch(tmp_path / "wav" / "03a01Lb.wav")
    _touch(tmp_path / "wav" / "14b03La.wav")
    scan = scan_corpus("emodb", tmp_path)
    got = _by_name(scan.utterances)
    assert {name: u.label for name, u in got.items()} == names
    assert got["03a01Wa.wav"].speaker == "emodb:03"
    assert scan.skipped == {"no canonical label for 'L' (boredom)": 2}
    with caplog.at_level(logging.WARNING):
        load_corpus("emo-db", tmp_path)
    assert "skipped 2 file(s)" in caplog.text and "boredom" in caplog.text


def test_savee_flat_and_speaker_dirs(tmp_path: Path) -> None:
    """SAVEE: speaker from prefix (DC_a01) or folder (KL/sa03); sa and su are not 's'."""
    _touch(tmp_path / "ALL" / "DC_a01.wav")
    _touch(tmp_path / "ALL" / "JE_su12.wav")
    _touch(tmp_path / "AudioData" / "KL" / "sa03.wav")
    _touch(tmp_path / "AudioData" / "JK" / "n30.wav")
    _touch(tmp_path / "AudioData" / "JK" / "x01.wav")
    scan = scan_corpus("savee", tmp_path)
    got = _by_name(scan.utterances)
    assert got["DC_a01.wav"] == Utterance(
        tmp_path / "ALL" / "DC_a01.wav", "angry", "savee:DC", "savee"
    )
    assert got["JE_su12.wav"].label == "surprised"
    assert (got["sa03.wav"].speaker, got["sa03.wav"].label) == ("savee:KL", "sad")
    assert got["n30.wav"].label == "neutral"
    assert scan.skipped == {"unmapped emotion code 'x'": 1}


def test_manifest_relative_paths_and_corpus_column(tmp_path: Path) -> None:
    """Manifest: paths relative to the CSV, synonyms mapped, unknown labels counted."""
    _touch(tmp_path / "data" / "a.wav")
    _touch(tmp_path / "data" / "b.flac", rate=44_100)
    _touch(tmp_path / "data" / "c.wav")
    csv_path = tmp_path / "mine.csv"
    csv_path.write_text(
        "path,label,speaker,corpus\n"
        "data/a.wav,anger,s1,\n"
        "data/b.flac,neutral,s2,studio\n"
        "data/c.wav,contempt,s1,\n"
    )
    scan = scan_corpus("manifest", csv_path)
    got = _by_name(scan.utterances)
    assert got["a.wav"] == Utterance(tmp_path / "data" / "a.wav", "angry", "mine:s1", "mine")
    assert got["b.flac"].speaker == "studio:s2"
    assert scan.skipped == {"unmapped label 'contempt'": 1}


def test_manifest_errors_name_the_problem(tmp_path: Path) -> None:
    """A missing column or audio file raises ConfigError saying what is wrong."""
    bad = tmp_path / "bad.csv"
    bad.write_text("file,label\nx.wav,happy\n")
    with pytest.raises(ConfigError, match="lacks column"):
        scan_corpus("manifest", bad)
    missing = tmp_path / "missing.csv"
    missing.write_text("path,label,speaker\nnope.wav,happy,s1\n")
    with pytest.raises(ConfigError, match="line 2"):
        scan_corpus("manifest", missing)


def test_unknown_corpus_and_missing_root(tmp_path: Path) -> None:
    """Unknown names and missing folders are user errors with a hint."""
    with pytest.raises(ConfigError, match="known corpora"):
        scan_corpus("iemocap", tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        scan_corpus("ravdess", tmp_path / "nope")


def test_default_root_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """STREAMSER_CORPORA wins; a missing folder gives None."""
    monkeypatch.setenv("STREAMSER_CORPORA", str(tmp_path))
    assert default_corpora_root() == tmp_path
    monkeypatch.setenv("STREAMSER_CORPORA", str(tmp_path / "absent"))
    assert default_corpora_root() is None


@pytest.mark.corpora
def test_real_corpora_counts() -> None:
    """The shared RAVDESS (1200 speech files, 20 actors) and TESS (2798 files) load fully."""
    root = default_corpora_root()
    if root is None or not (root / "ravdess").is_dir() or not (root / "tess").is_dir():
        pytest.skip("corpora folder not found (set STREAMSER_CORPORA)")
    ravdess = scan_corpus("ravdess", root / "ravdess")
    assert len(ravdess.utterances) == 1200 and ravdess.n_skipped == 0
    assert len({u.speaker for u in ravdess.utterances}) == 20
    tess = scan_corpus("tess", root / "tess")
    assert len(tess.utterances) == 2798 and tess.n_skipped == 0
    assert {u.speaker for u in tess.utterances} == {"tess:OAF", "tess:YAF"}


def test_nemo_speakers_and_labels(tmp_path: Path) -> None:
    """nEMO: speaker and emotion from the file name; Polish-corpus English names map."""
    _touch(tmp_path / "samples" / "EB0_anger_1.wav")
    _touch(tmp_path / "samples" / "WR0_happiness_86.flac")
    _touch(tmp_path / "samples" / "KS0_surprised_10.wav")
    _touch(tmp_path / "samples" / "KS0_boredom_3.wav")
    _touch(tmp_path / "samples" / "data_notes.wav")
    scan = scan_corpus("nemo", tmp_path)
    got = _by_name(scan.utterances)
    assert got["EB0_anger_1.wav"].label == "angry"
    assert got["EB0_anger_1.wav"].speaker == "nemo:EB0"
    assert got["WR0_happiness_86.flac"].label == "happy"
    assert got["KS0_surprised_10.wav"].label == "surprised"
    assert len(got) == 3 and scan.n_skipped == 2


def test_ased_case_insensitive_and_speaker_field(tmp_path: Path) -> None:
    """ASED: the emotion letter (any case) and speaker bb; the folder does not decide."""
    _touch(tmp_path / "05Angry" / "a5-03-01-02-50.wav")
    _touch(tmp_path / "04Sad" / "S4-04-02-01-29.wav")
    _touch(tmp_path / "01Neutral" / "n1-01-01-01-01.wav")
    _touch(tmp_path / "01Neutral" / "q1-01-01-01-01.wav")
    scan = scan_corpus("ased", tmp_path)
    got = _by_name(scan.utterances)
    assert got["a5-03-01-02-50.wav"].label == "angry"
    assert got["a5-03-01-02-50.wav"].speaker == "ased:50"
    assert got["S4-04-02-01-29.wav"].label == "sad"
    assert got["n1-01-01-01-01.wav"].speaker == "ased:01"
    assert scan.n_skipped == 1


def test_baved_levels_and_duplicate_speaker(tmp_path: Path) -> None:
    """BAVED: level 1 is neutral, 0 and 2 have no category; speaker 53 is speaker 46."""
    _touch(tmp_path / "0" / "10-f-20-0-1-0.wav")
    _touch(tmp_path / "0" / "10-f-20-0-2-1.wav")
    _touch(tmp_path / "3" / "53-m-22-3-0-7.wav")
    scan = scan_corpus("baved", tmp_path)
    got = _by_name(scan.utterances)
    assert got["10-f-20-0-1-0.wav"].label == "neutral"
    assert got["10-f-20-0-1-0.wav"].arousal == 1
    assert got["10-f-20-0-2-1.wav"].label is None and got["10-f-20-0-2-1.wav"].arousal == 2
    assert got["53-m-22-3-0-7.wav"].speaker == "baved:46"


@pytest.mark.corpora
def test_real_new_corpora_counts() -> None:
    """nEMO, ASED and BAVED load fully with the speaker counts their README gives."""
    root = default_corpora_root()
    if root is None or not all((root / c).is_dir() for c in ("nemo", "ased", "baved")):
        pytest.skip("corpora folder not found (set STREAMSER_CORPORA)")
    nemo = scan_corpus("nemo")
    assert len(nemo.utterances) == 4481 and len({u.speaker for u in nemo.utterances}) == 9
    ased = scan_corpus("ased")
    assert len(ased.utterances) == 2474 and len({u.speaker for u in ased.utterances}) == 65
    baved = scan_corpus("baved")
    assert len(baved.utterances) == 1935
    assert len({u.speaker for u in baved.utterances}) == 59  # 60 ids, 46 and 53 are one
