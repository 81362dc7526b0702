"""Voice profiles on disk: round trip, XDG location, stale-model refusal, damaged files."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from test_calibration_core import LABELS, params, unit

from streamser.calibration.profiles import Profile, ProfileStore, check_name, profiles_dir
from streamser.core.contract import ModelSpec
from streamser.core.enrolment import EnrolmentResult
from streamser.core.passages import LANGUAGES, PROMPTED_EMOTIONS, passage
from streamser.errors import ProfileError


def spec(version: str = "tiny-1.0", seed: int = 0) -> ModelSpec:
    p = params(seed)
    meta = {"speaker_norm": json.dumps({
        "head_weight": p.head_weight.tolist(), "head_bias": p.head_bias.tolist(),
        "scale": p.scale, "ref_mean": p.ref_mean.tolist()}), "temperature": "1"}
    return ModelSpec(LABELS, 16_000, 1.0, 0.25, version, meta)


def result(seed: int = 1, emotions: bool = False) -> EnrolmentResult:
    rng = np.random.default_rng(seed)
    emb = {"neutral": unit(rng.normal(size=(12, 6)))}
    if emotions:
        emb |= {"happy": unit(rng.normal(size=(3, 6))), "sad": unit(rng.normal(size=(3, 6)))}
    return EnrolmentResult(emb, speech_s=20.5, level_dbfs=-28.0, clipped_fraction=0.0,
                           pitch_hz=180.0)


def make(name: str = "me", emotions: bool = False, model: ModelSpec | None = None) -> Profile:
    model = model or spec()
    return Profile.create(name, model, params(0), result(emotions=emotions), passage="en-1")


def test_round_trip_keeps_the_adaptation(tmp_path: Path) -> None:
    """A saved profile loads back equal, with the method chosen by what was enrolled."""
    store = ProfileStore(tmp_path)
    for emotions, method in ((False, "prior"), (True, "prototypes")):
        saved = make(emotions=emotions)
        store.save(saved)
        loaded = store.load_for("me", spec())
        assert loaded.adaptation.method == method
        assert loaded.to_dict() == json.loads(json.dumps(saved.to_dict()))
        windows = unit(np.random.default_rng(2).normal(size=(3, 6)))
        np.testing.assert_allclose(loaded.adaptation.probs(params(0), windows),
                                   saved.adaptation.probs(params(0), windows), atol=1e-4)
    assert [i.name for i in store.entries()] == ["me"]
    assert store.delete("me") and not store.delete("me")


def test_default_folder_follows_xdg_config_home(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Profiles go to $XDG_CONFIG_HOME/streamser/profiles (Linux) unless STREAMSER_PROFILES."""
    monkeypatch.delenv("STREAMSER_PROFILES", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert profiles_dir() == tmp_path / "cfg" / "streamser" / "profiles"
    path = ProfileStore().save(make())
    assert path == tmp_path / "cfg" / "streamser" / "profiles" / "me.json"
    monkeypatch.setenv("STREAMSER_PROFILES", str(tmp_path / "elsewhere"))
    assert profiles_dir() == tmp_path / "elsewhere"


def test_a_profile_from_another_model_is_refused(tmp_path: Path) -> None:
    """Another model version, or the same version with other weights: a clear refusal."""
    store = ProfileStore(tmp_path)
    store.save(make())
    with pytest.raises(ProfileError, match=r"calibrated with model tiny-1\.0.*tiny-2\.0.*"
                                           r"streamser calibrate --profile me"):
        store.load_for("me", spec("tiny-2.0"))
    with pytest.raises(ProfileError, match="other weights"):
        store.load_for("me", spec("tiny-1.0", seed=5))


@pytest.mark.parametrize("content", [
    b"", b"{", b"\xff\xfe\x00garbage", b"[1, 2, 3]", b'{"format": "other"}',
    b'{"format": "streamser-profile", "version": 99, "name": "me"}',
    b'{"format": "streamser-profile", "version": 1, "name": "me"}',
])
def test_damaged_files_give_a_message_never_a_crash(tmp_path: Path, content: bytes) -> None:
    """Empty, truncated, binary, foreign, future-version or incomplete files: ProfileError."""
    store = ProfileStore(tmp_path)
    (tmp_path / "me.json").write_bytes(content)
    with pytest.raises(ProfileError, match=r"me\.json"):
        store.load("me")
    [info] = store.entries()
    assert info.name == "me" and info.problem is not None and "me.json" in info.problem


def test_damaged_numbers_are_caught(tmp_path: Path) -> None:
    """A valid JSON profile with a wrong-sized bias is damaged, not a crash later."""
    store = ProfileStore(tmp_path)
    body = make().to_dict()
    body["adaptation"] = {**body["adaptation"], "bias": [0.0, 1.0]}  # type: ignore[dict-item]
    (tmp_path / "me.json").write_text(json.dumps(body))
    with pytest.raises(ProfileError, match="damaged"):
        store.load("me")


def test_missing_profile_lists_the_saved_ones(tmp_path: Path) -> None:
    """Asking for an unknown name says which exist and how to create it."""
    store = ProfileStore(tmp_path)
    store.save(make("alice"))
    with pytest.raises(ProfileError, match=r"saved profiles: alice.*calibrate --profile bob"):
        store.load("bob")


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden", "x" * 41, "me.json", "a b"])
def test_bad_names_are_refused(name: str) -> None:
    """Names cannot escape the folder or be empty."""
    with pytest.raises(ProfileError, match="not allowed"):
        check_name(name)


def test_unwritable_folder_is_a_profile_error(tmp_path: Path) -> None:
    """Saving into a path that is a file: ProfileError naming STREAMSER_PROFILES."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ProfileError, match="STREAMSER_PROFILES"):
        ProfileStore(blocker / "profiles").save(make())


def test_atomic_save_leaves_no_temporary_files(tmp_path: Path) -> None:
    """After saving twice only the profile itself is in the folder."""
    store = ProfileStore(tmp_path)
    store.save(make())
    store.save(replace(make(), passage="de-1"))
    assert [p.name for p in tmp_path.iterdir()] == ["me.json"]
    assert store.load("me").passage == "de-1"


def test_passages_exist_in_several_languages() -> None:
    """English and at least one other language, ~20 s of text, a prompt per emotion."""
    assert "en" in LANGUAGES and len(LANGUAGES) >= 2
    for lang in LANGUAGES:
        p = passage(lang)
        assert 50 <= len(p.text.split()) <= 75, lang
        assert set(p.prompts) == set(PROMPTED_EMOTIONS)
    assert passage("de_DE.UTF-8").language == "de"
    assert passage("xx").language == "en"
