"""``streamser calibrate`` then ``live``/``analyze --profile`` through main(argv), shipped model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from test_calibration_core import demo_voice

from streamser.calibration.terminal import meter
from streamser.cli import main


@pytest.fixture
def profiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh XDG config folder: profiles land in it, as for a new user."""
    monkeypatch.delenv("STREAMSER_PROFILES", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path / "config" / "streamser" / "profiles"


@pytest.fixture(scope="module")
def voices(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Demo actor 20 (enrolment) and 8 s of actor 19, as WAV files."""
    folder = tmp_path_factory.mktemp("voices")
    sf.write(folder / "a20.wav", demo_voice("20"), 16_000, subtype="PCM_16")
    sf.write(folder / "a19.wav", demo_voice("19")[: 16_000 * 8], 16_000, subtype="PCM_16")
    return folder / "a20.wav", folder / "a19.wav"


def test_new_user_calibrates_then_live_and_analyze_apply_the_profile(
        profiles: Path, voices: tuple[Path, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """calibrate --source FILE saves ~/.config/streamser/profiles/me.json; live and analyze
    with --profile me write frames that say "profile": "me"; a restart reads it again."""
    enrol, other = voices
    assert main(["calibrate", "--profile", "me", "--source", str(enrol)]) == 0
    out = capsys.readouterr().out
    assert "profile 'me' saved to" in out and "streamser live --profile me" in out
    saved = json.loads((profiles / "me.json").read_text())
    assert saved["name"] == "me" and saved["model_version"].startswith("facenet")
    from streamser.model import ModelRunner
    from streamser.resources import default_model_path

    relative = ModelRunner.load(default_model_path(), use_gpu=False).spec.speaker_reference
    assert saved["adaptation"]["method"] == ("reference" if relative else "prior")
    assert saved["passage"] == "en-1"

    record = tmp_path / "live.jsonl"
    assert main(["live", "--source", str(other), "--fast", "--no-gui", "--no-ws", "--quiet",
                 "--profile", "me", "--record", str(record)]) == 0
    rows = [json.loads(line) for line in record.read_text().splitlines()]
    assert rows and all(r["profile"] == "me" for r in rows)
    assert "voice profile me" in capsys.readouterr().err

    timeline = tmp_path / "analyze.jsonl"
    assert main(["analyze", str(other), "--out", str(timeline), "--profile", "me"]) == 0
    plain = tmp_path / "plain.jsonl"
    assert main(["analyze", str(other), "--out", str(plain)]) == 0
    adapted = [json.loads(line) for line in timeline.read_text().splitlines()]
    unadapted = [json.loads(line) for line in plain.read_text().splitlines()]
    assert all(r["profile"] == "me" for r in adapted)
    assert all(r["profile"] is None for r in unadapted)
    assert any(a["probs"] != b["probs"] for a, b in zip(adapted, unadapted, strict=True))

    assert main(["profiles"]) == 0
    assert capsys.readouterr().out.startswith("me: model facenet")


def test_refused_enrolment_exits_2_with_the_reason(profiles: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """A silent recording: 'No speech was heard', exit 2, nothing saved."""
    silence = tmp_path / "silence.wav"
    sf.write(silence, np.zeros(16_000 * 5, np.float32), 16_000)
    assert main(["calibrate", "--source", str(silence)]) == 2
    assert "calibration refused: No speech was heard" in capsys.readouterr().err
    assert not profiles.exists()


def test_stale_and_damaged_profiles_are_one_line_errors(
        profiles: Path, voices: tuple[Path, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A profile from another model version, a truncated file, a missing name: exit 2 with a
    message saying what to do, never a traceback."""
    _, other = voices
    assert main(["calibrate", "--profile", "me", "--source", str(other), "--seconds", "5"]) == 0
    capsys.readouterr()
    path = profiles / "me.json"
    body = json.loads(path.read_text())
    path.write_text(json.dumps({**body, "model_version": "facenet-s-0.9.0"}))
    args = ["live", "--source", str(other), "--fast", "--no-gui", "--no-ws", "--profile", "me"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "calibrated with model facenet-s-0.9.0" in err and "streamser calibrate" in err
    assert "Traceback" not in err
    path.write_text(path.read_text()[:100])
    assert main(args) == 2
    assert "delete it or calibrate again" in capsys.readouterr().err
    assert main(["analyze", str(other), "--out", str(tmp_path / "x.jsonl"),
                 "--profile", "nobody"]) == 2
    assert "no profile named 'nobody'" in capsys.readouterr().err
    assert main(["profiles"]) == 0
    assert "me: unusable" in capsys.readouterr().out


def test_meter_spans_minus_60_to_0_dbfs() -> None:
    """The text meter is empty at -60 dBFS and below, full at 0, half at -30."""
    assert meter(-80.0, 10).startswith("|..........|")
    assert meter(0.0, 10).startswith("|##########|")
    assert meter(-30.0, 10).startswith("|#####.....|")
    assert meter(float("-inf"), 10).startswith("|..........|")


@pytest.mark.audio
@pytest.mark.slow
def test_calibrate_from_the_virtual_microphone(profiles: Path, voices: tuple[Path, Path]) -> None:
    """The interactive flow on a real device: passage, countdown with a level meter, progress
    with seconds left, then the saved profile (the voice is played into the virtual mic)."""
    import io
    import subprocess

    from test_mic_e2e import _need_virtual_mic

    from streamser.calibration.terminal import CalibrateOptions, run_calibrate
    from streamser.core.config import SourceSpec

    _need_virtual_mic()
    enrol, _ = voices
    out, err = io.StringIO(), io.StringIO()
    player = subprocess.Popen(["sh", "-c", f"sleep 2; exec paplay -d vsink '{enrol}'"])
    try:
        code = run_calibrate(CalibrateOptions(profile="mic", source=SourceSpec.mic("pulse"),
                                              seconds=6.0, countdown_s=1.5), out, err)
    finally:
        player.terminate()
        player.wait(10)
    text = out.getvalue()
    assert code == 0, err.getvalue()
    assert "Read this aloud" in text and "The library opens" in text
    assert "Starting in 2" in text and "dBFS" in text and "s left" in text
    assert "profile 'mic' saved to" in text
    assert (profiles / "mic.json").is_file()
