"""Defects 6 and 9: an output that fails stops alone; files are whole or visibly partial."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf
from conftest import speechlike

from streamser.cli import main
from streamser.outputs.recorders import AudioRecorder, FrameRecorder, partial_path

REPO = Path(__file__).resolve().parent.parent

DISK_FULL = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # over the limit, write() fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (5_000, 5_000))
from streamser.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    path = tmp_path / "speech.wav"
    sf.write(path, speechlike(8.0, seed=1), 16_000, subtype="PCM_16")
    return path


def test_full_disk_stops_the_recorder_not_the_session(tiny_model_path: Path, wav: Path,
                                                     tmp_path: Path) -> None:
    """A frames file that hits 'disk full' (a 5 kB file-size limit) stops with one message;
    the session analyses the whole file and exits 0; the partial file keeps its .partial name."""
    out = tmp_path / "frames.jsonl"
    proc = subprocess.run(
        [sys.executable, "-c", DISK_FULL, "live", "--source", str(wav), "--fast", "--no-gui",
         "--no-ws", "--model", str(tiny_model_path), "--record", str(out)],
        capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("record-frames output stopped") == 1, proc.stderr
    assert "incomplete" in proc.stderr and str(partial_path(out)) in proc.stderr
    assert not out.exists() and partial_path(out).exists()
    terminal_frames = [line for line in proc.stdout.splitlines() if line.rstrip().endswith("ms")]
    assert len(terminal_frames) == 32  # 8 s at hop 0.25 s: every frame still made and shown


def test_recorders_write_a_partial_file_then_rename(tmp_path: Path, speech) -> None:  # type: ignore[no-untyped-def]
    """While recording, only NAME.partial exists; a complete close renames it to NAME, an
    incomplete one leaves it."""
    from test_wsserver import make_frame

    from streamser.core.frames import AudioBlock

    frames = FrameRecorder(tmp_path / "a.jsonl")
    audio = AudioRecorder(tmp_path / "a.flac")
    frames.write(make_frame(1))
    audio.write(AudioBlock(0, speech, 0.0))
    assert not (tmp_path / "a.jsonl").exists() and partial_path(tmp_path / "a.jsonl").exists()
    frames.close()
    audio.close()
    assert json.loads((tmp_path / "a.jsonl").read_text())["seq"] == 1
    assert sf.info(str(tmp_path / "a.flac")).frames == len(speech)
    assert not partial_path(tmp_path / "a.jsonl").exists()
    cut = FrameRecorder(tmp_path / "b.csv")
    cut.write(make_frame(1))
    cut.close(complete=False)
    assert cut.incomplete == partial_path(tmp_path / "b.csv") and cut.incomplete.exists()
    assert not (tmp_path / "b.csv").exists()


def test_corrupt_input_leaves_a_marked_partial_timeline(tiny_model_path: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """analyze of a FLAC corrupt mid-way: exit 2, the frames so far in OUT.partial, and the
    message says which file is incomplete (was: a truncated OUT with no marker)."""
    good = tmp_path / "good.flac"
    sf.write(good, speechlike(8.0), 16_000)
    data = bytearray(good.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 2000):
        data[i] = (i * 7) & 0xFF
    bad = tmp_path / "bad.flac"
    bad.write_bytes(bytes(data))
    out = tmp_path / "t.jsonl"
    code = main(["analyze", str(good), str(bad), str(good), "--out", str(out),
                 "--model", str(tiny_model_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert not out.exists() and partial_path(out).exists()
    assert f"incomplete: {partial_path(out)}" in err
    assert f"the timeline of {bad} stops early, and 1 later file is missing" in err


def test_interrupted_analyze_says_which_file_is_incomplete(tiny_model_path: Path,
                                                          tmp_path: Path) -> None:
    """SIGINT during analyze: exit 130, OUT is not written, OUT.partial is named."""
    long = tmp_path / "long.wav"
    sf.write(long, speechlike(1200.0), 16_000, subtype="PCM_16")
    out = tmp_path / "t.csv"
    proc = subprocess.Popen([sys.executable, "-m", "streamser.cli", "analyze", str(long),
                             "--out", str(out), "--hop", "0.05", "--model", str(tiny_model_path)],
                            stderr=subprocess.PIPE, text=True, cwd=REPO,
                            # a shell's background job inherits SIGINT ignored: undo that
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 90
        while not partial_path(out).exists() or partial_path(out).stat().st_size == 0:
            assert time.monotonic() < deadline, "analyze wrote nothing in 90 s"
            assert proc.poll() is None, "analyze ended before it was interrupted"
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert not out.exists() and partial_path(out).exists()
    assert f"incomplete: {partial_path(out)}" in err and str(long) in err


@pytest.mark.parametrize("option", ["--out", "--record"])
def test_missing_output_folder_is_an_error(tiny_model_path: Path, wav: Path, tmp_path: Path,
                                           option: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """--out/--record into a folder that does not exist is refused (was: silently created)."""
    target = tmp_path / "no-such-folder" / "t.jsonl"
    argv = (["analyze", str(wav), "--out", str(target)] if option == "--out" else
            ["live", "--source", str(wav), "--fast", "--no-gui", "--no-ws", "--record",
             str(target)])
    assert main([*argv, "--model", str(tiny_model_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not target.parent.exists()
