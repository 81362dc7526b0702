"""The streamser exception hierarchy.

Every error a *user* can cause derives from :class:`StreamserError`. Its message says what was
received, what is allowed, and what to do; the CLI prints it on one line and exits non-zero
without a traceback. Programming errors (bugs) stay ordinary Python exceptions.

- :class:`ModelContractError` — the ONNX file is missing, corrupt, or breaks the model contract.
- :class:`AudioSourceError` — a device, file or stream cannot be opened or read.
- :class:`DeviceNotFoundError` — no input device matches what was asked (subclass of the above).
- :class:`ConfigError` — an option value is out of range or inconsistent.
- :class:`OutputError` — an output (websocket port, recording file) cannot be opened.
- :class:`ProfileError` — a voice profile is missing, damaged, or made with another model.
"""

from __future__ import annotations

__all__ = [
    "AudioSourceError",
    "ConfigError",
    "DeviceNotFoundError",
    "ModelContractError",
    "OutputError",
    "ProfileError",
    "StreamserError",
    "one_line",
]


class StreamserError(Exception):
    """Base class of every user-facing streamser error."""


class ModelContractError(StreamserError):
    """The model file is missing, unreadable, or does not honour the model contract."""


class AudioSourceError(StreamserError):
    """An audio source (microphone, file, stdin) cannot be opened or read."""


class DeviceNotFoundError(AudioSourceError):
    """No input device matches the requested index or name."""


class ConfigError(StreamserError):
    """An option value is invalid."""


class OutputError(StreamserError):
    """An output (websocket server, recording file) cannot be opened."""


class ProfileError(StreamserError):
    """A voice profile cannot be used: missing, damaged, or made with another model."""


def one_line(text: object) -> str:
    """``text`` with control characters (newline, carriage return, escape ...) shown as escapes,
    so a file or device name cannot break a message over lines or forge another message."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in str(text))
