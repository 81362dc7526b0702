"""The dashboard on a real PortAudio device: the PulseAudio virtual microphone
(scripts/virtual-mic.sh). Skipped without it, failed without it when STREAMSER_REQUIRE_AUDIO=1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from streamser.engine import Engine
from streamser.errors import AudioSourceError
from streamser.gui.app import create_window
from streamser.gui.options import DashboardOptions
from streamser.gui.session import SourceChoice

from .fakes import speechlike

pytestmark = [pytest.mark.audio, pytest.mark.slow]


def _need_virtual_mic() -> list[Any]:
    devices: list[Any] = []
    ok = bool(os.environ.get("PULSE_SERVER")) and shutil.which("paplay") is not None
    if ok:
        try:
            from streamser.devices import list_input_devices

            devices = list_input_devices()
            ok = any(d.name == "pulse" for d in devices)
        except AudioSourceError:
            ok = False
    if not ok:
        if os.environ.get("STREAMSER_REQUIRE_AUDIO") == "1":
            pytest.fail("virtual microphone required (STREAMSER_REQUIRE_AUDIO=1) but not found")
        pytest.skip("no PulseAudio virtual microphone (source scripts/virtual-mic.sh)")
    return devices


def test_dashboard_on_the_virtual_microphone(qtbot: Any, themed: Any, tiny_runner: Any,
                                            tmp_path: Path) -> None:
    """Real device list (each once, default starred); speech played into the mic is plotted."""
    devices = _need_virtual_mic()
    from streamser.sources import MicSource

    def factory(choice: SourceChoice) -> Engine:
        return Engine(tiny_runner, MicSource(choice.device))

    window = create_window(factory, DashboardOptions(
        source=SourceChoice(device="pulse"), settings_path=tmp_path / "s.ini"))
    qtbot.addWidget(window)
    combo = window.controls.device_combo
    texts = [combo.itemText(i) for i in range(combo.count())]
    assert len(texts) == len(devices) == len(set(texts))
    assert sum(t.startswith("\u2605") for t in texts) == sum(d.is_default for d in devices)
    assert combo.currentText().startswith(("pulse", "\u2605 pulse"))
    engine = window.host.engine
    qtbot.waitUntil(lambda: engine.stats().blocks > 0, timeout=10_000)
    wav = tmp_path / "say.wav"
    sf.write(wav, speechlike(3.0, seed=9), 16_000, subtype="PCM_16")
    subprocess.run(["paplay", "-d", "vsink", str(wav)], check=True, timeout=20)
    qtbot.waitUntil(lambda: window.history.frames_seen >= 8, timeout=10_000)
    qtbot.waitUntil(lambda: float(np.abs(window.history.env.view()).max()) > 0.1,
                    timeout=5000)
    assert window.host.gui_dropped_frames() == 0
    window.close()
    assert engine.finished.is_set()
