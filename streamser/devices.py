"""Input devices: list each once, mark the default, resolve a user's choice.

PortAudio lists one physical device once per host API (ALSA, JACK, PulseAudio, WASAPI, MME ...),
so naive lists show the same microphone several times and users pick the wrong one. We keep each
device once: the entry under the default input's host API when there is one, else the first.

All functions run on the calling thread (the main thread in practice) and only query PortAudio.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from streamser.errors import AudioSourceError, DeviceNotFoundError

__all__ = [
    "InputDevice",
    "import_sounddevice",
    "list_input_devices",
    "open_streams",
    "resolve_device",
]

#: Input streams this process has open (MicSource keeps it up to date, main/PortAudio threads).
open_streams = [0]


def import_sounddevice() -> ModuleType:
    """Import sounddevice, turning a missing PortAudio into a clear :class:`AudioSourceError`."""
    try:
        import sounddevice
    except OSError as exc:
        raise AudioSourceError(
            f"cannot use a microphone: {exc}. Install PortAudio (Debian/Ubuntu: "
            "'apt-get install libportaudio2'), or analyse a file with --source FILE."
        ) from None
    return sounddevice


@dataclass(frozen=True)
class InputDevice:
    """One input device as PortAudio reports it (``default_samplerate`` in Hz)."""

    index: int
    name: str
    hostapi: str
    channels: int
    default_samplerate: float
    is_default: bool

    def describe(self) -> str:
        """One line for device lists: ``3  USB Mic (ALSA, 2 ch, 48000 Hz) [default]``."""
        mark = "  [default]" if self.is_default else ""
        return (f"{self.index:>3}  {self.name} ({self.hostapi}, {self.channels} ch, "
                f"{self.default_samplerate:.0f} Hz){mark}")


def _base_name(name: str) -> str:
    """Device name without the host-API decorations PortAudio adds (``, ALSA``, ``(hw:1,0)``)."""
    base = name.split(" (hw:")[0]
    for suffix in (", ALSA", ", JACK", ", MME", ", Windows DirectSound", ", Windows WASAPI"):
        base = base.removesuffix(suffix)
    return base.strip().lower()


def _rescan(sd: ModuleType) -> bool:
    """Make PortAudio enumerate devices afresh (it lists them once, at initialisation), so a
    microphone plugged in after start-up appears. Only done while this process has no stream open:
    re-initialising PortAudio under an open stream would break it. Returns True if rescanned.
    """
    if open_streams[0] > 0:
        return False
    try:
        sd._terminate()
        sd._initialize()
    except Exception:  # PortAudio refuses: keep the old list
        return False
    return True


def list_input_devices(rescan: bool = False) -> list[InputDevice]:
    """Every input device once, default first-class; raises AudioSourceError without PortAudio.

    ``rescan`` asks PortAudio to enumerate devices again first (see :func:`_rescan`).
    """
    sd = import_sounddevice()
    if rescan:
        _rescan(sd)
    try:
        raw = sd.query_devices()
        hostapis = sd.query_hostapis()
        default_in = sd.default.device[0]
    except Exception as exc:  # PortAudio errors are plain Exceptions
        raise AudioSourceError(f"PortAudio could not list devices: {exc}") from None
    default_in = default_in if isinstance(default_in, int) and default_in >= 0 else -1
    default_api = raw[default_in]["hostapi"] if default_in >= 0 else None
    chosen: dict[str, InputDevice] = {}
    for dev in raw:
        if dev["max_input_channels"] <= 0:
            continue
        device = InputDevice(
            index=int(dev["index"]),
            name=str(dev["name"]),
            hostapi=str(hostapis[dev["hostapi"]]["name"]),
            channels=int(dev["max_input_channels"]),
            default_samplerate=float(dev["default_samplerate"]),
            is_default=int(dev["index"]) == default_in,
        )
        key = _base_name(device.name)
        held = chosen.get(key)
        if (held is None or device.is_default
                or (not held.is_default and dev["hostapi"] == default_api
                    and held.hostapi != device.hostapi)):
            chosen[key] = device
    return sorted(chosen.values(), key=lambda d: d.index)


def resolve_device(spec: str | int | None) -> InputDevice:
    """Find the device a user asked for: None (default), an index, or a name substring.

    If nothing matches, PortAudio rescans once (a device may have been plugged in since start).
    Raises :class:`DeviceNotFoundError` listing what exists when nothing (or several) match.
    """
    try:
        return _resolve(list_input_devices(), spec)
    except DeviceNotFoundError:
        return _resolve(list_input_devices(rescan=True), spec)


def _resolve(devices: list[InputDevice], spec: str | int | None) -> InputDevice:
    listing = "; ".join(f"{d.index}: {d.name}" for d in devices) or "none"
    if not devices:
        raise DeviceNotFoundError(
            "no audio input device found. Plug in a microphone, or analyse a file with "
            "--source FILE."
        )
    if spec is None or spec == "":
        for device in devices:
            if device.is_default:
                return device
        return devices[0]
    text = str(spec).strip()
    if text.lstrip("-").isdigit():
        index = int(text)
        for device in devices:
            if device.index == index:
                return device
        raise DeviceNotFoundError(
            f"no input device with index {index}. Input devices are: {listing}. "
            "Run 'streamser devices' and pass --device with one of these."
        )
    matches = [d for d in devices if text.lower() in d.name.lower()]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise DeviceNotFoundError(
            f"no input device name contains {text!r}. Input devices are: {listing}. "
            "Pass --device with an index or part of a name."
        )
    names = ", ".join(f"{d.index}: {d.name}" for d in matches)
    raise DeviceNotFoundError(
        f"{text!r} matches several input devices ({names}); pass --device with an index."
    )
