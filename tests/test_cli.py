"""The command line through main(argv): outputs, files, and one-line errors with exit codes."""

from __future__ import annotations

import csv
import json
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import speechlike

from streamser.cli import main


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    path = tmp_path / "speech.wav"
    sf.write(path, speechlike(3.0, seed=7), 16_000, subtype="PCM_16")
    return path


def test_analyze_writes_jsonl_timeline(tiny_model_path: Path, wav: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """analyze FILE --out x.jsonl writes one frame object per line with the wire fields."""
    out = tmp_path / "frames.jsonl"
    assert main(["analyze", str(wav), "--out", str(out), "--model", str(tiny_model_path)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 12 and rows[0]["seq"] == 1 and rows[-1]["end"] == 3.0
    assert set(rows[0]["probs"]) == {"neutral", "happy", "sad", "angry"}
    assert "wrote 12 frames" in capsys.readouterr().err


def test_analyze_csv_for_several_files(tiny_model_path: Path, wav: Path, tmp_path: Path) -> None:
    """Several inputs go to one CSV with a file column and p_/s_ columns per label."""
    out = tmp_path / "frames.csv"
    assert main(["analyze", str(wav), str(wav), "--out", str(out), "--hop", "0.5",
                 "--model", str(tiny_model_path)]) == 0
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert len(rows) == 12 and rows[0]["file"] == str(wav)
    assert {"p_happy", "s_happy", "top", "voiced", "latency_ms"} <= set(rows[0])


def test_live_file_fast_headless_with_recording(tiny_model_path: Path, wav: Path,
                                                tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """live --source FILE --no-gui prints frames and records frames and audio."""
    frames, audio = tmp_path / "live.jsonl", tmp_path / "live.wav"
    code = main(["live", "--source", str(wav), "--fast", "--no-gui", "--no-ws",
                 "--model", str(tiny_model_path), "--record", str(frames),
                 "--record-audio", str(audio)])
    assert code == 0
    out = capsys.readouterr()
    assert out.out.count("dB") == 12 and "stopped: 12 frames over 3.0 s" in out.err
    assert len(frames.read_text().splitlines()) == 12
    recorded, rate = sf.read(audio, dtype="float32")
    original, _ = sf.read(wav, dtype="float32")
    assert rate == 16_000 and len(recorded) == len(original)
    assert np.max(np.abs(recorded - original)) < 1e-3


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["live", "--source", "/nonexistent.wav", "--no-gui"], "does not exist"),
        (["live", "--model", "/nonexistent.onnx", "--no-gui"],
         "model file /nonexistent.onnx does not exist"),
        (["live", "--hop", "9", "--no-gui"], "allowed is 0.05 to 2.0 s"),
        (["analyze", "/nonexistent.flac", "--out", "x.jsonl"], "does not exist"),
        (["analyze", "{wav}", "--out", "{tmp}/x.txt"], "must be one of .jsonl, .csv"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(argv: list[str], message: str, wav: Path,
                                             tmp_path: Path, tiny_model_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Bad input never shows a traceback: one 'streamser: error:' line, exit code 2."""
    argv = [a.format(wav=wav, tmp=tmp_path) for a in argv]
    if "--model" not in argv:
        argv += ["--model", str(tiny_model_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("streamser: error:") and message in err[0]


def test_corrupt_model_is_refused(tmp_path: Path, wav: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    """A file that is not ONNX gives an actionable error."""
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x01garbage" * 50)
    assert main(["analyze", str(wav), "--out", str(tmp_path / "o.jsonl"), "--model",
                 str(bad)]) == 2
    assert "not a loadable ONNX model" in capsys.readouterr().err


def test_port_in_use_exits_2(tiny_model_path: Path, wav: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    """A taken websocket port is reported with what to do."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["live", "--source", str(wav), "--no-gui", "--fast", "--ws-port", str(port),
                     "--model", str(tiny_model_path)])
    assert code == 2
    assert "--ws-port" in capsys.readouterr().err


def test_live_serves_websocket_clients(tiny_model_path: Path, wav: Path) -> None:
    """A client written from the README receives hello, then frames, from `streamser live`."""
    import asyncio

    from websockets.asyncio.client import connect

    from streamser.app import LiveOptions, run_headless
    from streamser.core.config import SourceSpec
    from streamser.outputs.websocket import ServerConfig

    ready = threading.Event()
    port: list[int] = []
    stop = threading.Event()

    def on_ready(session) -> None:  # type: ignore[no-untyped-def]
        port.append(session.output("websocket").port)
        ready.set()

    options = LiveOptions(SourceSpec.file(wav, loop=True), model=tiny_model_path,
                          outputs=(ServerConfig(port=0),), quiet=True)
    worker = threading.Thread(target=run_headless, kwargs={"options": options, "stop": stop,
                                                           "on_ready": on_ready})
    worker.start()
    try:
        assert ready.wait(10)

        async def client() -> list[dict]:
            got = []
            async with connect(f"ws://127.0.0.1:{port[0]}") as ws:
                while len(got) < 4:
                    got.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
            return got

        messages = asyncio.run(client())
    finally:
        stop.set()
        worker.join(10)
    assert messages[0]["type"] == "hello" and messages[0]["model_version"] == "tiny-test-0"
    frames = [m for m in messages[1:] if m["type"] == "frame"]
    assert frames and all(m["end"] > 0 for m in frames)
    assert not worker.is_alive()


def test_silent_file_is_reported(tiny_model_path: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Silent audio is analysed (frames marked unvoiced) and the user is told why."""
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(32_000, np.float32), 16_000)
    out = tmp_path / "s.jsonl"
    assert main(["analyze", str(silent), "--out", str(out), "--model", str(tiny_model_path)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows and not any(r["voiced"] for r in rows) and all(r["top"] is None for r in rows)
    assert "no speech detected" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_signal_stops_live_cleanly(tiny_model_path: Path, wav: Path, sig: str) -> None:
    """Ctrl-C or SIGTERM ends `streamser live` through the ordered shutdown, exit code 0."""
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "streamser.cli", "live", "--source", str(wav), "--loop",
         "--no-gui", "--ws-port", "0", "--model", str(tiny_model_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        for _ in range(3):  # header + two frames: it is running
            assert proc.stdout.readline()
        time.sleep(0.2)
        proc.send_signal(getattr(signal, sig))
        _out, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "stopped:" in err and "Traceback" not in err
