"""Defects 7 and 8: kiosk recovery from unplug and stall, PortAudio's stop deadline, and signal
handlers kept until cleanup is done."""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import speechlike

from streamser.bus import BoundedQueue
from streamser.core.config import SourceSpec
from streamser.engine import Engine, EngineConfig, EngineState
from streamser.errors import AudioSourceError
from streamser.gui.session import EngineHost, SourceChoice
from streamser.model import ModelRunner
from streamser.sources import MicSource, RawBlock, Source


class Device:
    """A microphone the test can unplug (the stream errors out), suspend (it goes silent
    without an error, like a suspended PulseAudio source) and bring back."""

    def __init__(self) -> None:
        self.present = True
        self.suspended = False
        self.opens = 0
        self.attempts = 0


class DeviceSource(Source):
    """Delivers 32 ms blocks in real time from ``device`` (its own reader thread)."""

    name = "mic: test device"

    def __init__(self, device: Device) -> None:
        super().__init__()
        self.device = device
        self._stop = threading.Event()

    def start(self, queue: BoundedQueue[RawBlock]) -> None:
        self.device.attempts += 1
        if not self.device.present:
            raise AudioSourceError("input device 'test device' is not there")
        self.device.opens += 1
        audio = speechlike(2.0)
        threading.Thread(target=self._run, args=(queue, audio), daemon=True).start()

    def _run(self, queue: BoundedQueue[RawBlock], audio: np.ndarray) -> None:
        frame, block = 0, 512
        while not self._stop.wait(block / 16_000):
            if not self.device.present:
                self._fail(AudioSourceError("input device 'test device' stopped delivering"))
                return
            if self.device.suspended:
                continue
            start = frame % (len(audio) - block)
            queue.put(RawBlock(frame, audio[start : start + block, None], time.monotonic()))
            frame += block

    def stop(self) -> None:
        self._stop.set()
        self.finished.set()


@pytest.fixture
def kiosk(tiny_runner: ModelRunner):  # type: ignore[no-untyped-def]
    device = Device()

    def factory(choice: SourceChoice) -> Engine:
        return Engine(tiny_runner, DeviceSource(device), EngineConfig(stall_timeout_s=0.5))

    host = EngineHost(factory, auto_recover=True, retry_s=0.3)
    yield host, device
    host.close()


def frames_flow(host: EngineHost, seconds: float = 3.0) -> bool:
    """Poll like the dashboard's timer until frames arrive; True if they did."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        host.poll()
        frames, _ = host.drain()
        if frames:
            return True
        time.sleep(0.05)
    return False


def test_stop_after_a_failed_start_does_not_raise(tiny_runner: ModelRunner) -> None:
    """A source that cannot open leaves an engine whose stop() is harmless (it used to join a
    thread that was never started and raise)."""
    device = Device()
    device.present = False
    engine = Engine(tiny_runner, DeviceSource(device))
    with pytest.raises(AudioSourceError):
        engine.start()
    engine.stop()
    engine.stop()
    assert engine.state is EngineState.FAILED


def test_kiosk_retries_an_absent_device_every_retry_s(kiosk) -> None:  # type: ignore[no-untyped-def]
    """While the device is gone, reopening is tried once per retry_s, without exceptions."""
    host, device = kiosk
    device.present = False
    with pytest.raises(AudioSourceError):
        host.open(SourceChoice())
    attempts = 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < 1.0:
        before = device.attempts
        host.poll()  # never raises
        attempts += device.attempts - before
        time.sleep(0.01)
    assert 2 <= attempts <= 4, attempts  # 1.0 s / retry 0.3 s, not every 10 ms tick


def test_kiosk_recovers_from_unplug_within_2_s(kiosk) -> None:  # type: ignore[no-untyped-def]
    """Unplugged, then back: frames flow again within 2 s of the device's return."""
    host, device = kiosk
    host.open(SourceChoice())
    assert frames_flow(host)
    device.present = False
    time.sleep(0.8)
    host.drain()  # what was made before the unplug (and the end-of-stream tail)
    assert not frames_flow(host, 0.5)
    device.present = True
    t0 = time.monotonic()
    assert frames_flow(host, 2.0)
    assert time.monotonic() - t0 < 2.0
    assert host.error is None and host.restarts >= 1


def test_kiosk_recovers_from_a_stalled_device(kiosk) -> None:  # type: ignore[no-untyped-def]
    """A suspended device (no audio, no error) is closed and reopened; its stale error clears."""
    host, device = kiosk
    host.open(SourceChoice())
    assert frames_flow(host)
    opens = device.opens
    device.suspended = True
    time.sleep(1.0)  # past stall_timeout_s
    host.poll()
    assert host.error is not None and "stalled" in host.error
    device.suspended = False
    t0 = time.monotonic()
    assert frames_flow(host, 2.0)
    assert time.monotonic() - t0 < 2.0
    assert device.opens > opens and host.error is None


class FrozenStream:
    """A PortAudio stream whose stop() blocks like one on a frozen audio server."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def stop(self) -> None:
        self.release.wait(30)

    def close(self) -> None:
        pass


def test_portaudio_stop_has_a_deadline() -> None:
    """MicSource.stop() returns after stop_deadline_s even when PortAudio's stop hangs."""
    source = MicSource.__new__(MicSource)
    Source.__init__(source)
    source.device = type("D", (), {"name": "frozen"})()  # type: ignore[assignment]
    source.stop_deadline_s = 0.5
    stream = FrozenStream()
    source._stream = stream
    t0 = time.monotonic()
    source.stop()
    assert time.monotonic() - t0 < 1.5
    stream.release.set()


@dataclass(frozen=True)
class _SpyConfig:
    """An output config whose output notes the SIGTERM handler while the session stops."""

    seen: list[object]
    name = "spy"

    def create(self) -> _Spy:
        return _Spy(self.seen)


class _Spy:
    name = "spy"

    def __init__(self, seen: list[object]) -> None:
        self.seen = seen

    def start(self, link: object) -> None:
        pass

    def stop(self) -> None:
        self.seen.append(signal.getsignal(signal.SIGTERM))

    def counters(self) -> dict[str, int]:
        return {}

    def describe(self) -> str:
        return "spy"


def test_signal_handlers_stay_until_cleanup_is_done(tiny_model_path: Path,
                                                   tmp_path: Path) -> None:
    """While outputs are being stopped, SIGTERM still goes to streamser's handler (a second
    SIGTERM used to kill the process and lose the recording's last frames)."""
    from streamser.app import LiveOptions, run_headless

    wav = tmp_path / "a.wav"
    sf.write(wav, speechlike(2.0), 16_000)
    seen: list[object] = []
    options = LiveOptions(source=SourceSpec.file(wav, realtime=True), model=tiny_model_path,
                          outputs=(_SpyConfig(seen),), quiet=True, seconds=0.5)
    before = signal.getsignal(signal.SIGTERM)
    assert run_headless(options) == 0
    assert seen and seen[0] is not before and seen[0] not in (signal.SIG_DFL, signal.SIG_IGN)
    assert signal.getsignal(signal.SIGTERM) is before
