"""OSC output (``--osc HOST:PORT``): frames as Open Sound Control over UDP, for TouchDesigner,
Max/MSP, Pure Data, Unity, Processing.

Address space (every packet is a bundle whose timetag is the window end in Unix time, derived
from the audio clock; argument types in OSC notation):

- ``/streamser/frame`` ``i f f...f f f f``: seq, audio time of the window end (s), one
  smoothed probability per label in ``/streamser/labels`` order, arousal, valence,
  voiced_prob (arousal/valence in -1..1, the others 0..1).
- ``/streamser/label`` ``s f i``: the new top label (``uncertain`` for speech with no clear
  emotion, ``none`` without speech), its confidence, seq; sent in the frame's bundle when the
  label changes.
- ``/streamser/labels`` ``s...``: the label names, at start and with every status.
- ``/streamser/status`` ``s i f f i``: state, frames so far, audio seconds, hop (s), and the
  total of every loss counter; every ``status_interval_s`` (2 s).
- ``/streamser/config`` ``f f``: hop and smoothing (s) after a live change.

UDP: a listener that is not there loses packets without slowing anything; send errors are
counted (``errors``). Runs on its own thread (``streamser-osc``).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from streamser.core.config import LiveSettings
from streamser.core.frames import Frame
from streamser.core.timing import AudioClockMap, capture_time
from streamser.errors import ConfigError, OutputError
from streamser.outputs.base import OutputKind, ThreadedOutput, label_of

if TYPE_CHECKING:
    from streamser.session import SessionLink, SessionStatus

__all__ = ["KIND", "OscConfig", "OscOutput", "parse_target"]

PREFIX = "/streamser"

OscArg = tuple[str | int | float, str]
"""A value and its OSC type tag ("i", "f", "s")."""


class OscOutput(ThreadedOutput):
    """See the module docstring."""

    name = "osc"

    def __init__(self, config: OscConfig) -> None:
        super().__init__()
        self.config = config
        self.status_interval_s = config.status_interval_s
        self._client: Any = None
        self._labels: tuple[str, ...] = ()
        self._clock = AudioClockMap()
        self._last_label: str | None = None
        self.packets_out = 0

    def open(self, link: SessionLink) -> None:
        from pythonosc.udp_client import UDPClient

        try:
            self._client = UDPClient(self.config.host, self.config.port)
        except OSError as exc:
            raise OutputError(f"cannot send OSC to {self.config.host}:{self.config.port} "
                              f"({exc.strerror or exc}); check --osc HOST:PORT.") from None
        self._labels = link.info().labels
        self._send(None, [self._message("labels", [(x, "s") for x in self._labels])])

    # -- building packets -----------------------------------------------------------------
    @staticmethod
    def _message(address: str, args: list[OscArg]) -> Any:
        from pythonosc.osc_message_builder import OscMessageBuilder

        builder = OscMessageBuilder(f"{PREFIX}/{address}")
        for value, kind in args:
            builder.add_arg(value, kind)
        return builder.build()

    def _send(self, timetag: float | None, messages: list[Any]) -> None:
        from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder

        # python-osc annotates the timetag as int; it takes float Unix seconds (write_date)
        bundle = OscBundleBuilder(IMMEDIATELY if timetag is None else timetag)  # type: ignore[arg-type]
        for message in messages:
            bundle.add_content(message)
        self._client.send(bundle.build())
        self.packets_out += 1

    # -- hooks (output thread) ------------------------------------------------------------
    def on_frame(self, frame: Frame) -> None:
        captured = capture_time(frame.wall_time, frame.latency_ms, 0.0)
        timetag = self._clock.stamp(frame.end_s, captured)
        args: list[OscArg] = [(frame.seq, "i"), (frame.end_s, "f")]
        args += [(p, "f") for p in frame.smoothed]
        args += [(frame.arousal, "f"), (frame.valence, "f"), (frame.voiced_prob, "f")]
        messages = [self._message("frame", args)]
        label = label_of(frame)
        if label != self._last_label:
            self._last_label = label
            messages.append(self._message("label", [(label, "s"), (frame.confidence, "f"),
                                                    (frame.seq, "i")]))
        self._send(timetag, messages)

    def on_status(self, status: SessionStatus) -> None:
        lost = sum(status.losses().values())
        self._send(time.time(), [
            self._message("status", [(status.state.value, "s"), (status.frames, "i"),
                                     (status.audio_s, "f"), (status.hop_s, "f"), (lost, "i")]),
            self._message("labels", [(x, "s") for x in self._labels]),
        ])

    def on_config(self, settings: LiveSettings) -> None:
        self._send(time.time(), [self._message("config", [(settings.hop_s, "f"),
                                                          (settings.smoothing_s, "f")])])

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def extra_counters(self) -> dict[str, int]:
        return {"packets_out": self.packets_out}

    def describe(self) -> str:
        return f"OSC to udp://{self.config.host}:{self.config.port}{PREFIX}/*"


def parse_target(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6addr]:PORT`` for IPv6) -> (host, port); raises ConfigError."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
        raise ConfigError(f"--osc {text!r}: expected HOST:PORT, e.g. --osc 127.0.0.1:9000.")
    return host, int(port)


@dataclass(frozen=True)
class OscConfig:
    """``--osc HOST:PORT``: where to send, and how often a status goes out (seconds)."""

    host: str
    port: int
    status_interval_s: float = 2.0
    name = "osc"

    def create(self) -> OscOutput:
        return OscOutput(self)


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--osc", metavar="HOST:PORT", help="send frames as OSC over UDP "
                   "(/streamser/frame, /streamser/label, /streamser/status)")


def _from_args(args: argparse.Namespace) -> OscConfig | None:
    return OscConfig(*parse_target(args.osc)) if args.osc else None


KIND = OutputKind("osc", _add_arguments, _from_args)
