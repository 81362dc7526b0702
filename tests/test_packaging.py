"""Shipped files: found through importlib.resources in the checkout and in a real wheel install."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from streamser import resources
from streamser.errors import ModelContractError

REPO = Path(__file__).resolve().parent.parent


def test_checkout_finds_model_and_demo_through_the_package() -> None:
    """The model and demo audio are package resources (symlinked in the checkout)."""
    model = resources.default_model_path()
    assert model.suffix == ".onnx" and model.is_file()
    assert model.parent.name == "models" and model.parent.parent.name == "data"
    demo = resources.demo_audio_path()
    assert demo is not None and demo.is_file()


def test_newest_model_by_version_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Any *.onnx in the model folder is a candidate; the highest file-name version wins."""
    for name in ("streamser-facenet-s-1.1.0.onnx", "streamser-facenet-s-1.10.0.onnx",
                 "streamser-facenet-s-1.9.2.onnx", "notes.md"):
        (tmp_path / name).write_bytes(b"x")
    monkeypatch.setattr(resources, "MODELS", tmp_path)
    monkeypatch.delenv("STREAMSER_MODEL", raising=False)
    assert [p.name for p in resources.shipped_models()] == [
        "streamser-facenet-s-1.1.0.onnx", "streamser-facenet-s-1.9.2.onnx",
        "streamser-facenet-s-1.10.0.onnx"]
    assert resources.default_model_path().name == "streamser-facenet-s-1.10.0.onnx"
    monkeypatch.setenv("STREAMSER_MODEL", "/elsewhere/m.onnx")
    assert resources.default_model_path() == Path("/elsewhere/m.onnx")


def test_no_model_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resources, "MODELS", tmp_path)
    monkeypatch.delenv("STREAMSER_MODEL", raising=False)
    with pytest.raises(ModelContractError, match="--model PATH"):
        resources.default_model_path()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_pip_install_into_a_fresh_venv_runs_outside_the_checkout(tmp_path: Path) -> None:
    """`pip install .` into a new venv, then `cd /tmp && streamser live` finds its model and
    (without a microphone) its demo audio inside site-packages."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                          "--disable-pip-version-check", str(REPO)],
                         capture_output=True, text=True, timeout=540)
    assert pip.returncode == 0, pip.stderr[-2000:]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "STREAMSER_MODEL")}
    # no microphone (a PulseAudio server that is not there): live falls back to the demo
    # audio shipped in the package, which is what this test is about
    env.update(PULSE_SERVER="unix:/nonexistent/streamser-test", PYTHONFAULTHANDLER="1")
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "import streamser.resources as r; print(r.default_model_path()); "
         "print(r.demo_audio_path())"],
        cwd="/tmp", env=env, capture_output=True, text=True, check=True)
    model, demo = where.stdout.split()
    assert model.startswith(str(venv)) and model.endswith(".onnx") and Path(model).is_file()
    assert demo.startswith(str(venv)) and Path(demo).is_file()
    proc = subprocess.Popen([str(venv / "bin" / "streamser"), "live", "--no-gui", "--no-ws",
                             "--quiet", "--seconds", "3"],
                            cwd="/tmp", env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack
        _, err = proc.communicate(timeout=10)
        pytest.fail(f"streamser live did not stop within 60 s:\n{err[-6000:]}")
    assert proc.returncode == 0, err
    assert "bundled demo audio" in err and "-> model " in err and "stopped:" in err
    assert "Traceback" not in err
