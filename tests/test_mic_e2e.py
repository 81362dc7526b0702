"""End to end through the real PortAudio path: a WAV played into a PulseAudio virtual microphone
(scripts/virtual-mic.sh) is captured by sounddevice and comes out as frames.

Skips when no virtual microphone is running, unless STREAMSER_REQUIRE_AUDIO=1 (CI), where a
missing audio path is a failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import speechlike

from streamser.bus import Overflow
from streamser.engine import Engine, EngineState
from streamser.errors import AudioSourceError, DeviceNotFoundError
from streamser.model import ModelRunner

pytestmark = [pytest.mark.audio, pytest.mark.slow]


def _need_virtual_mic() -> None:
    ok = bool(os.environ.get("PULSE_SERVER")) and shutil.which("paplay") is not None
    if ok:
        try:
            from streamser.devices import list_input_devices

            ok = any(d.name in ("pulse", "default") for d in list_input_devices())
        except AudioSourceError:
            ok = False
    if not ok:
        if os.environ.get("STREAMSER_REQUIRE_AUDIO") == "1":
            pytest.fail("virtual microphone required (STREAMSER_REQUIRE_AUDIO=1) but not found")
        pytest.skip("no PulseAudio virtual microphone (source scripts/virtual-mic.sh)")


def test_played_wav_is_captured_and_analysed(tiny_runner: ModelRunner, tmp_path: Path) -> None:
    """Audio played into the virtual mic arrives bit-close through PortAudio and yields frames."""
    _need_virtual_mic()
    from streamser.sources import MicSource

    played = speechlike(3.0, seed=5) * 0.5
    wav = tmp_path / "played.wav"
    sf.write(wav, played, 16_000, subtype="PCM_16")
    source = MicSource("pulse")
    engine = Engine(tiny_runner, source)
    frames = engine.frames.subscribe("test", 1024, Overflow.DROP_OLDEST)
    audio = engine.audio.subscribe("test", 4096, Overflow.DROP_OLDEST)
    engine.start()
    try:
        deadline = time.monotonic() + 10
        while engine.stats().blocks == 0 and time.monotonic() < deadline:
            time.sleep(0.05)  # the first PortAudio stream takes ~2 s to deliver its first block
        assert engine.stats().blocks > 0, "no audio block captured in 10 s"
        subprocess.run(["paplay", "-d", "vsink", str(wav)], check=True, timeout=20)
        time.sleep(1.0)
    finally:
        engine.stop()
    captured = np.concatenate([b.samples for b in audio.drain()])
    got = frames.drain()
    assert engine.state is EngineState.STOPPED and engine.stats().dropped_blocks == 0
    assert len(got) >= 8 and [f.seq for f in got] == list(range(1, len(got) + 1))
    assert any(f.voiced for f in got), "speech played into the mic was never voiced"
    # find the played signal in the capture: it must be there nearly unchanged
    corr = np.correlate(captured, played[:8000], mode="valid")
    start = int(np.argmax(corr))
    segment = captured[start : start + len(played)]
    assert len(segment) == len(played)
    r = np.corrcoef(segment, played)[0, 1]
    assert r > 0.95, f"captured audio correlates only {r:.3f} with what was played"
    # timestamps come from sample counts: end times step by exactly one hop
    ends = np.array([f.end_s for f in got])
    assert np.allclose(np.diff(ends), engine.stats().hop_s)


def test_unknown_device_names_what_exists() -> None:
    """Asking for a device that does not exist lists the real ones and says what to do."""
    _need_virtual_mic()
    from streamser.sources import MicSource

    with pytest.raises(DeviceNotFoundError, match=r"no input device name contains 'nonesuch'.*"
                       r"Input devices are: .*pulse"):
        MicSource("nonesuch")
    with pytest.raises(DeviceNotFoundError, match="no input device with index 99"):
        MicSource(99)


def test_device_lost_mid_run_is_reported(tiny_model_path: Path, tmp_path: Path) -> None:
    """When the audio server behind the device dies, `live` says so and exits 1."""
    _need_virtual_mic()
    import signal
    import sys

    repo = Path(__file__).resolve().parent.parent
    env = dict(os.environ, VMIC_DIR=str(tmp_path / "vmic"))
    setup = subprocess.run(
        ["bash", "-c", f"source {repo / 'scripts' / 'virtual-mic.sh'} >/dev/null && "
         "echo $XDG_RUNTIME_DIR $PULSE_SERVER"],
        env=env, capture_output=True, text=True, timeout=30, check=True)
    xdg, server = setup.stdout.split()
    env.update(XDG_RUNTIME_DIR=xdg, PULSE_SERVER=server)
    pid = int((tmp_path / "vmic" / "pulse.pid").read_text())
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamser.cli", "live", "--no-gui", "--no-ws",
         "--device", "pulse", "--model", str(tiny_model_path)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        for _ in range(3):  # header and two frames: capture is running
            assert proc.stdout.readline()
        os.kill(pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert proc.returncode == 1, err
    assert "stopped delivering audio" in err and "--device" in err and "Traceback" not in err


def test_rescan_lists_devices_again_but_never_under_an_open_stream() -> None:
    """PortAudio is re-initialised to find re-plugged mics only while no stream is open."""
    _need_virtual_mic()
    from streamser import devices

    before = devices.list_input_devices()
    assert devices.list_input_devices(rescan=True) == before
    devices.open_streams[0] += 1
    try:
        assert devices._rescan(devices.import_sounddevice()) is False
    finally:
        devices.open_streams[0] -= 1
