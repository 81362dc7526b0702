"""Defect 10: a desktop where Qt cannot start falls back to the terminal; no packaging
warnings; scripts/run installs Qt's runtime libraries."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import soundfile as sf
from conftest import speechlike

REPO = Path(__file__).resolve().parent.parent


def test_dashboard_that_cannot_start_falls_back_to_the_terminal(tiny_model_path: Path,
                                                               tmp_path: Path) -> None:
    """With a display Qt cannot use (here: a dead DISPLAY), live says so in one line and runs
    in the terminal (was: Qt aborted the process, exit 134)."""
    wav = tmp_path / "a.wav"
    sf.write(wav, speechlike(2.0), 16_000)
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    env["DISPLAY"] = ":987"
    proc = subprocess.run(
        [sys.executable, "-m", "streamser.cli", "live", "--source", str(wav), "--fast",
         "--no-ws", "--model", str(tiny_model_path)],
        capture_output=True, text=True, timeout=120, cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stderr
    notes = [line for line in proc.stderr.splitlines() if "dashboard cannot start" in line]
    assert len(notes) == 1 and "running in the terminal" in notes[0]
    assert "stopped: 8 frames" in proc.stderr and "%" in proc.stdout


def test_scripts_run_installs_qt_runtime_libraries() -> None:
    """scripts/run installs the xcb libraries Qt needs where there is a display."""
    text = (REPO / "scripts" / "run").read_text()
    for lib in ("libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1", "libxkbcommon-x11-0"):
        assert lib in text


def test_pyproject_license_is_an_spdx_string() -> None:
    """The licence is an SPDX expression: setuptools prints no deprecation box on install."""
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT AND CC-BY-NC-SA-4.0"
