"""Lab Streaming Layer output (``--lsl [NAME]``): frames as an LSL stream beside EEG and video.

Two outlets, made with pylsl (whose wheel bundles liblsl):

- ``NAME`` of type ``Emotion``: one float32 channel per label (the smoothed probability, the
  one ``top``/arousal/valence come from), then ``arousal``, ``valence`` and ``voiced_prob``;
  nominal rate 1/hop at start; ``source_id`` ``streamser:NAME@HOST`` (stable across restarts,
  so LabRecorder picks the stream up again). The description carries each channel's label,
  unit and type, and the model version, window, hop, smoothing and sample rate.
- ``NAME-labels`` of type ``Markers``: an irregular string stream; one sample each time the
  top label changes (``uncertain`` for speech with no clear emotion, ``none`` without speech)
  and one
  ``config hop_s=... smoothing_s=...`` sample when a setting changes live.

Timestamps are the window *end* on the LSL clock, derived from the audio clock
(:class:`streamser.core.timing.AudioClockMap`), not from when the frame was made. Runs on its
own thread (``streamser-lsl``) fed by a bounded queue, like every
:class:`~streamser.outputs.base.ThreadedOutput`.
"""

from __future__ import annotations

import argparse
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from streamser.core.config import LiveSettings
from streamser.core.frames import Frame
from streamser.core.timing import AudioClockMap, capture_time
from streamser.errors import OutputError
from streamser.outputs.base import OutputKind, ThreadedOutput, label_of

if TYPE_CHECKING:
    from streamser.session import SessionLink

__all__ = ["KIND", "LslConfig", "LslOutput", "source_id"]

STREAM_TYPE = "Emotion"
EXTRA_CHANNELS = ("arousal", "valence", "voiced_prob")
_QUIET = "[log]\nlevel = -2\n"  # liblsl logs INFO lines to stderr by default


def source_id(name: str) -> str:
    """The stable LSL ``source_id`` of stream ``name`` on this machine."""
    return f"streamser:{name}@{socket.gethostname()}"


def _import_pylsl() -> Any:
    try:
        import pylsl
    except ImportError as exc:  # pragma: no cover - pylsl is a dependency
        raise OutputError(f"--lsl needs pylsl ({exc}); install it with 'pip install pylsl'.") \
            from None
    return pylsl


class LslOutput(ThreadedOutput):
    """See the module docstring."""

    name = "lsl"

    def __init__(self, config: LslConfig) -> None:
        super().__init__()
        self.config = config
        self._outlet: Any = None
        self._markers: Any = None
        self._clock = AudioClockMap()
        self._last_label: str | None = None
        self.markers_out = 0
        self._pylsl: Any = None

    def open(self, link: SessionLink) -> None:
        pylsl = _import_pylsl()
        pylsl.set_config_content(_QUIET)
        self._pylsl = pylsl
        info = link.info()
        name = self.config.stream_name
        channels = (*info.labels, *EXTRA_CHANNELS)
        try:
            stream = pylsl.StreamInfo(name, STREAM_TYPE, len(channels), 1.0 / info.hop_s,
                                      pylsl.cf_float32, source_id(name))
            desc = stream.desc()
            for key, value in (("model_version", info.model_version),
                               ("window_s", f"{info.window_s:g}"), ("hop_s", f"{info.hop_s:g}"),
                               ("smoothing_s", f"{info.smoothing_s:g}"),
                               ("sample_rate", str(info.sample_rate)),
                               ("timestamps", "window end, from the audio clock"),
                               ("server", info.server)):
                desc.append_child_value(key, value)
            chans = desc.append_child("channels")
            for label in channels:
                ch = chans.append_child("channel")
                ch.append_child_value("label", label)
                if label in EXTRA_CHANNELS:
                    ch.append_child_value("unit", "normalized" if label != "voiced_prob"
                                          else "probability")
                    ch.append_child_value("type", label)
                else:
                    ch.append_child_value("unit", "probability")
                    ch.append_child_value("type", "emotion")
            self._outlet = pylsl.StreamOutlet(stream)
            markers = pylsl.StreamInfo(f"{name}-labels", "Markers", 1, pylsl.IRREGULAR_RATE,
                                       pylsl.cf_string, f"{source_id(name)}-labels")
            markers.desc().append_child_value("meaning", "top label changes and live "
                                              "setting changes of stream " + name)
            self._markers = pylsl.StreamOutlet(markers)
        except Exception as exc:
            raise OutputError(f"cannot create the LSL stream {name!r}: {exc}.") from None

    def _stamp(self, frame: Frame) -> float:
        clock_minus_wall = self._pylsl.local_clock() - time.time()
        captured = capture_time(frame.wall_time, frame.latency_ms, clock_minus_wall)
        return self._clock.stamp(frame.end_s, captured)

    def on_frame(self, frame: Frame) -> None:
        stamp = self._stamp(frame)
        self._outlet.push_sample([*frame.smoothed, frame.arousal, frame.valence,
                                  frame.voiced_prob], stamp)
        label = label_of(frame)
        if label != self._last_label:
            self._last_label = label
            self._markers.push_sample([label], stamp)
            self.markers_out += 1

    def on_config(self, settings: LiveSettings) -> None:
        self._markers.push_sample([f"config hop_s={settings.hop_s:g} "
                                   f"smoothing_s={settings.smoothing_s:g}"])
        self.markers_out += 1

    def close(self) -> None:
        self._outlet = self._markers = None  # liblsl unregisters the outlets when released

    def extra_counters(self) -> dict[str, int]:
        return {"markers_out": self.markers_out}

    def describe(self) -> str:
        return f"LSL stream {self.config.stream_name!r} ({source_id(self.config.stream_name)})"


@dataclass(frozen=True)
class LslConfig:
    """``--lsl [NAME]``: the LSL stream's name (default ``streamser``)."""

    stream_name: str = "streamser"
    name = "lsl"

    def create(self) -> LslOutput:
        return LslOutput(self)


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lsl", nargs="?", const="streamser", metavar="NAME",
                   help="publish frames as a Lab Streaming Layer stream (type Emotion; "
                   "default name streamser) plus NAME-labels markers")


KIND = OutputKind("lsl", _add_arguments,
                  lambda args: LslConfig(args.lsl) if args.lsl else None)
