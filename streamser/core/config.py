"""Typed settings that cross threads: where audio comes from, control requests, live settings.

All frozen dataclasses (sans-I/O; safe to hand from any thread to any other):

- :class:`SourceSpec` — a microphone, a file or raw PCM on stdin, with its options. The CLI
  parses ``--source`` into one; the session opens it (:func:`streamser.session.open_source`).
- :class:`SetHop`, :class:`SetSmoothing`, :class:`UseProfile`, :class:`StartEnrolment`,
  :class:`CancelEnrolment` — the :data:`Control` messages a GUI, a test or a
  future remote control sends to a running engine (validated when made).
- :class:`LiveSettings` — the analysis settings in force; the engine publishes a new one each
  time a control takes effect, and outputs tell their clients (the websocket ``config``
  message, the ``hello`` for new clients).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from streamser.core.adapt import ActiveProfile
from streamser.core.frames import SAMPLE_RATE

__all__ = ["CancelEnrolment", "Control", "LiveSettings", "SetHop", "SetSmoothing", "SourceKind",
           "SourceSpec", "StartEnrolment", "UseProfile"]


class SourceKind(enum.Enum):
    """The three kinds of audio source."""

    MIC = "mic"
    FILE = "file"
    STDIN = "stdin"


@dataclass(frozen=True)
class SourceSpec:
    """Where audio comes from, before anything is opened.

    ``device`` (MIC): None for the system default, an index, or part of a name. ``path`` (FILE):
    the audio file; ``realtime`` paces it to the audio clock, ``loop`` restarts it at its end.
    ``rate`` (Hz) and ``channels`` describe raw s16le PCM on stdin (STDIN).
    """

    kind: SourceKind = SourceKind.MIC
    device: int | str | None = None
    path: Path | None = None
    realtime: bool = True
    loop: bool = False
    rate: int = SAMPLE_RATE
    channels: int = 1

    def __post_init__(self) -> None:
        if (self.kind is SourceKind.FILE) != (self.path is not None):
            need = "needs a" if self.path is None else "takes no"
            raise ValueError(f"a {self.kind.value} source {need} path")

    @classmethod
    def mic(cls, device: int | str | None = None) -> SourceSpec:
        """An input device (None: the default); a digit string becomes an index."""
        if isinstance(device, str) and device.strip().lstrip("-").isdigit():
            device = int(device)
        return cls(SourceKind.MIC, device=device)

    @classmethod
    def file(cls, path: str | Path, realtime: bool = True, loop: bool = False) -> SourceSpec:
        """An audio file, paced in real time or read as fast as possible."""
        return cls(SourceKind.FILE, path=Path(path), realtime=realtime, loop=loop)

    @classmethod
    def stdin(cls, rate: int = SAMPLE_RATE, channels: int = 1) -> SourceSpec:
        """Raw signed 16-bit little-endian PCM on standard input."""
        return cls(SourceKind.STDIN, rate=rate, channels=channels, realtime=False)

    @classmethod
    def parse(cls, text: str, device: str | None = None, realtime: bool = True,
              loop: bool = False, rate: int = SAMPLE_RATE, channels: int = 1) -> SourceSpec:
        """The CLI's ``--source``: ``"mic"``, ``"-"`` (stdin) or a file path."""
        if text == "-":
            return cls.stdin(rate, channels)
        if text == "mic":
            return cls.mic(device)
        return cls.file(text, realtime=realtime, loop=loop)

    def describe(self) -> str:
        """Short human text: ``default input``, ``device 3``, ``file a.wav``, ``stdin``."""
        if self.kind is SourceKind.FILE:
            assert self.path is not None
            return f"file {self.path.name}"
        if self.kind is SourceKind.STDIN:
            return f"stdin s16le {self.rate} Hz {self.channels} ch"
        return "default input" if self.device is None else f"device {self.device}"


@dataclass(frozen=True)
class SetHop:
    """Ask the engine for a new hop between windows (seconds); applies from the next window."""

    hop_s: float


@dataclass(frozen=True)
class SetSmoothing:
    """Ask the engine for a new smoothing time constant (seconds; 0 = off)."""

    tau_s: float


@dataclass(frozen=True)
class UseProfile:
    """Apply a loaded voice profile to the analysis (None: back to the model's own output)."""

    profile: ActiveProfile | None


@dataclass(frozen=True)
class StartEnrolment:
    """Start calibrating to the voice now speaking; the result is saved as ``profile``.

    ``seconds`` of neutral speech (the passage), then ``emotions`` prompted one sentence each.
    A new start replaces an enrolment in progress.
    """

    profile: str
    seconds: float = 20.0
    emotions: tuple[str, ...] = ()
    passage: str | None = None


@dataclass(frozen=True)
class CancelEnrolment:
    """Stop the enrolment in progress without saving anything."""


Control = SetHop | SetSmoothing | UseProfile | StartEnrolment | CancelEnrolment
"""A control request to a running engine."""


@dataclass(frozen=True)
class LiveSettings:
    """The analysis settings in force (times in seconds)."""

    hop_s: float
    smoothing_s: float
    speaker_norm: bool = False
    profile: ActiveProfile | None = None
    session_prior: bool = False

    @property
    def profile_name(self) -> str | None:
        """The voice profile in force, or None."""
        return None if self.profile is None else self.profile.name

    def to_dict(self) -> dict[str, object]:
        """JSON-ready body (the websocket ``config`` message's fields)."""
        return {"hop_s": round(self.hop_s, 6), "smoothing_s": round(self.smoothing_s, 6),
                "speaker_norm": self.speaker_norm, "profile": self.profile_name,
                "session_prior": self.session_prior}
