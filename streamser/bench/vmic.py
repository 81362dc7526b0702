"""A private PulseAudio virtual microphone for the end-to-end benchmark.

Same setup as ``scripts/virtual-mic.sh`` (null sink ``vsink`` at 16 kHz mono, its monitor
remapped as the default source ``vmic``), but in a temporary runtime folder with its own socket,
run as our child (not daemonised) so it is always stopped: nothing is shared with another
PulseAudio on the machine. PortAudio reaches it through ALSA's ``pulse`` device
(libasound2-plugins) when the capturing process has :attr:`VirtualMic.env` in its environment.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from streamser.bench._proc import BenchError, Child

__all__ = ["VirtualMic", "virtual_mic_missing"]

_CONFIG = """\
load-module module-native-protocol-unix auth-anonymous=1
load-module module-null-sink sink_name=vsink rate=16000 channels=1 format=s16le \
sink_properties=device.description=BenchSink
load-module module-remap-source master=vsink.monitor source_name=vmic \
source_properties=device.description=BenchMic
set-default-sink vsink
set-default-source vmic
"""


def virtual_mic_missing() -> str | None:
    """Why a virtual microphone cannot be set up here, or None when it can."""
    for tool in ("pulseaudio", "pactl", "paplay"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install pulseaudio pulseaudio-utils)"
    if not any(Path(p).exists() for p in (
            "/usr/lib/x86_64-linux-gnu/alsa-lib/libasound_module_pcm_pulse.so",
            "/usr/lib/aarch64-linux-gnu/alsa-lib/libasound_module_pcm_pulse.so",
            "/usr/lib/alsa-lib/libasound_module_pcm_pulse.so")):
        return "ALSA's pulse plugin is missing (apt-get install libasound2-plugins)"
    return None


class VirtualMic:
    """``with VirtualMic() as vm:`` starts PulseAudio; ``vm.env`` is what a capturer needs."""

    def __init__(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="streamser-bench-vmic-"))
        self.runtime = self._dir / "xdg"
        self.env = {
            "XDG_RUNTIME_DIR": str(self.runtime),
            "PULSE_SERVER": f"unix:{self.runtime}/pulse/native",
        }
        self._child: Child | None = None

    def start(self, timeout_s: float = 10.0) -> None:
        """Start the daemon and wait until it answers; raises :class:`BenchError` if it does not."""
        self.runtime.mkdir(mode=0o700)
        config = self._dir / "vmic.pa"
        config.write_text(_CONFIG)
        log = self._dir / "pulse.log"
        self._child = Child(
            ["pulseaudio", "--daemonize=no", "--exit-idle-time=-1", "--disallow-exit", "-n",
             "-F", str(config), f"--log-target=file:{log}", "--use-pid-file=no"],
            env=self.env, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._child.proc.poll() is not None:
                break
            ok = subprocess.run(["pactl", "info"], env=self._full_env(), capture_output=True,
                                timeout=5).returncode == 0
            if ok:
                return
            time.sleep(0.1)
        tail = log.read_text(errors="replace")[-300:] if log.exists() else ""
        self.stop()
        raise BenchError(f"PulseAudio virtual microphone did not start: {tail.strip()}")

    def _full_env(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    def play(self, path: Path) -> Child:
        """Start playing ``path`` into the virtual sink (the microphone hears it)."""
        return Child(["paplay", "-d", "vsink", str(path)], env=self.env,
                     stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        """Stop the daemon and remove its folder. Idempotent."""
        if self._child is not None:
            self._child.kill()
            self._child = None
        with contextlib.suppress(OSError):
            shutil.rmtree(self._dir)

    def __enter__(self) -> VirtualMic:
        self.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
