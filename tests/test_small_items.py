"""Defect 11's smaller items, each through the real command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile as sf
from conftest import speechlike

from streamser.cli import main
from streamser.outputs.websocket import ServerConfig, WebSocketOutput


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    path = tmp_path / "speech.wav"
    sf.write(path, speechlike(8.0, seed=3), 16_000, subtype="PCM_16")
    return path


def test_a_folder_given_to_analyze_is_called_a_folder(tiny_model_path: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A directory is reported as a folder (was: "does not exist")."""
    code = main(["analyze", str(tmp_path), "--out", str(tmp_path / "t.jsonl"),
                 "--model", str(tiny_model_path)])
    err = capsys.readouterr().err
    assert code == 2 and "is a folder" in err and "does not exist" not in err


def test_analyze_rows_always_name_their_file(tiny_model_path: Path, wav: Path,
                                             tmp_path: Path) -> None:
    """One input or several: every row has ``file`` (one layout for batch scripts)."""
    out = tmp_path / "t.jsonl"
    assert main(["analyze", str(wav), "--out", str(out), "--model", str(tiny_model_path)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows and all(row["file"] == str(wav) for row in rows)


def test_seconds_with_fast_counts_audio_seconds(tiny_model_path: Path, wav: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """live --fast --seconds 2 analyses 2 s of audio (was: the whole file)."""
    assert main(["live", "--source", str(wav), "--fast", "--seconds", "2", "--no-gui",
                 "--no-ws", "--quiet", "--model", str(tiny_model_path)]) == 0
    err = capsys.readouterr().err
    assert "over 2.0 s of audio" in err or "over 2.1 s of audio" in err, err


def test_ipv6_host_is_bracketed_in_the_address() -> None:
    """--ws-host :: prints ws://[::]:PORT, not ws://:::PORT."""
    described = WebSocketOutput(ServerConfig(host="::", port=8765)).describe()
    assert "ws://[::]:8765" in described and ":::" not in described


def test_a_newline_in_a_file_name_cannot_forge_a_line(tiny_model_path: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """File names are printed with control characters escaped: one message, one line."""
    from streamser.errors import one_line

    evil = tmp_path / "a\nstreamser: error: forged.wav"
    sf.write(evil, speechlike(1.0), 16_000, format="WAV")
    assert main(["analyze", str(evil), "--out", str(tmp_path / "t.jsonl"),
                 "--model", str(tiny_model_path)]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert not any(line.startswith("streamser: error: forged") for line in lines)
    assert one_line("a\nb\rc\x1b[2J") == "a\\nb\\rc\\x1b[2J"
