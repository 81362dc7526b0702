"""The websocket wire format, version ``SCHEMA_VERSION`` (sans-I/O: builds and parses JSON text).

Server to client (every message has ``type`` and ``schema``):

- ``hello`` — first message: ``session``, ``server``, ``model_version``, ``labels``,
  ``window_s``, ``hop_s``, ``smoothing_s``, ``speaker_norm``, ``profile`` (the voice profile
  in force, or null), ``session_prior`` (the session class-prior correction is on),
  ``sample_rate``, ``source``. The settings are those in force when the
  client connects.
- ``frame`` — one per analysis window: the fields of :meth:`streamser.core.frames.Frame.to_dict`.
- ``config`` — to every connected client when a setting changed live: ``hop_s``,
  ``smoothing_s``, ``speaker_norm``, ``profile``, ``session_prior`` (the new values).
- ``enrolment`` — to every client while someone calibrates: ``event`` (``started``,
  ``progress``, ``done``, ``failed``, ``cancelled``), ``profile``, ``progress`` (``speech_s``,
  ``target_s``, ``fraction``, ``level_dbfs``, ``phase``), ``issues`` (``code``/``message``
  pairs when it failed) and ``message``.
- ``profiles`` — reply to ``profiles``: ``profiles`` (``name``, ``model_version``, ``created``,
  ``problem``) and ``active``.
- ``status`` — every few seconds: ``state``, ``frames``, ``dropped_blocks``, ``subscribers``,
  ``client_dropped`` (frames this client lost because it read too slowly), ``max_rate_hz``,
  and ``counters`` (every loss counter of the session; see
  :meth:`streamser.session.SessionStatus.to_dict`).
- ``subscribed`` — reply to ``subscribe`` with the rate in force.
- ``pong`` — reply to ``ping``, echoing its ``id``.
- ``error`` — ``code`` and ``message`` (a human sentence); the connection stays open.

Client to server: ``{"type": "subscribe", "max_rate_hz": 2}`` (0 or absent = every frame),
``{"type": "ping", "id": 7}`` (``id``: a number or a string of at most 64 characters);
calibration: ``{"type": "enrol", "profile": "me", "seconds": 20, "emotions": ["happy"]}``
(seconds and emotions optional), ``{"type": "cancel_enrolment"}``,
``{"type": "use_profile", "profile": "me"}`` (``null`` clears it), ``{"type": "profiles"}``.
Anything else gets an ``error`` (NaN/Infinity and nesting deeper than 8 included); a message
over the size limit closes the connection with code 1009.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from streamser.core.config import LiveSettings
from streamser.core.frames import SCHEMA_VERSION, Frame

__all__ = [
    "ClientMessage",
    "ProtocolError",
    "SessionInfo",
    "config_message",
    "enrolment_message",
    "error_message",
    "frame_message",
    "hello_message",
    "parse_client_message",
]

MAX_RATE_HZ = 100.0
MAX_NESTING = 8
"""Deepest array/object nesting accepted in a client message (valid ones use 1)."""
MAX_ID_INT = 2**53
MAX_ID_CHARS = 64


@dataclass(frozen=True)
class SessionInfo:
    """What a ``hello`` tells subscribers about the stream (times in seconds)."""

    session: str
    server: str
    model_version: str
    labels: tuple[str, ...]
    window_s: float
    hop_s: float
    sample_rate: int
    source: str
    smoothing_s: float = 0.0
    speaker_norm: bool = False
    profile: str | None = None
    session_prior: bool = False


@dataclass(frozen=True)
class ClientMessage:
    """A valid client request: ``type`` is one of :data:`CLIENT_TYPES`."""

    type: str
    max_rate_hz: float = 0.0
    id: object = None
    profile: str | None = None
    seconds: float = 20.0
    emotions: tuple[str, ...] = ()


CLIENT_TYPES = ("subscribe", "ping", "enrol", "cancel_enrolment", "use_profile", "profiles")


class ProtocolError(Exception):
    """A client message that breaks the protocol; ``code`` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _dump(body: dict[str, object]) -> str:
    return json.dumps(body, separators=(",", ":"), allow_nan=False)


def hello_message(info: SessionInfo) -> str:
    """The ``hello`` text."""
    return _dump({
        "type": "hello", "schema": SCHEMA_VERSION, "session": info.session,
        "server": info.server, "model_version": info.model_version, "labels": list(info.labels),
        "window_s": info.window_s, "hop_s": info.hop_s, "smoothing_s": info.smoothing_s,
        "speaker_norm": info.speaker_norm, "profile": info.profile,
        "session_prior": info.session_prior, "sample_rate": info.sample_rate,
        "source": info.source,
    })


def config_message(settings: LiveSettings) -> str:
    """The ``config`` text: the settings in force after a live change."""
    return _dump({"type": "config", "schema": SCHEMA_VERSION, **settings.to_dict()})


def enrolment_message(body: dict[str, object]) -> str:
    """An ``enrolment`` text (body: :meth:`streamser.core.enrolment.EnrolmentEvent.to_dict`)."""
    return _dump({"type": "enrolment", "schema": SCHEMA_VERSION, **body})


def frame_message(frame: Frame) -> str:
    """The ``frame`` text (encoded once per frame, shared by every subscriber)."""
    return _dump({"type": "frame", "schema": SCHEMA_VERSION, **frame.to_dict()})


def status_message(**fields: object) -> str:
    """A ``status`` text with the given fields."""
    return _dump({"type": "status", "schema": SCHEMA_VERSION, **fields})


def reply_message(kind: str, **fields: object) -> str:
    """A ``subscribed`` or ``pong`` text."""
    return _dump({"type": kind, "schema": SCHEMA_VERSION, **fields})


def error_message(code: str, message: str) -> str:
    """An ``error`` text."""
    return _dump({"type": "error", "schema": SCHEMA_VERSION, "code": code, "message": message})


def _nesting(text: str) -> int:
    """Deepest ``[``/``{`` nesting in JSON text, strings skipped (linear; no recursion)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def _check_id(value: object) -> object:
    """A ping id is echoed back: a finite number, a short string, or absent."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and abs(value) <= MAX_ID_INT:
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, str) and len(value) <= MAX_ID_CHARS:
        return value
    raise ProtocolError("bad_id", f"ping id must be a number up to 2**53 or a string of at most "
                        f"{MAX_ID_CHARS} characters; got {type(value).__name__}.")


def parse_client_message(text: str | bytes) -> ClientMessage:
    """Parse one client message; raise :class:`ProtocolError` saying what is wrong.

    Never raises anything else: NaN/Infinity, nesting deeper than :data:`MAX_NESTING`, numbers
    too long for JSON's digit limit and out-of-range values all become a ``ProtocolError``.
    """
    if isinstance(text, bytes):
        raise ProtocolError("binary_not_supported",
                            "binary messages are not accepted; send JSON text.")
    if _nesting(text) > MAX_NESTING:
        raise ProtocolError("too_deep", f"message nests more than {MAX_NESTING} levels of "
                            "arrays/objects; client messages are flat objects.")
    try:
        body = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise ProtocolError(
            "bad_json", f"message is not valid JSON ({exc.msg} at char {exc.pos}); send an "
            'object such as {"type": "subscribe", "max_rate_hz": 2}.') from None
    except (ValueError, RecursionError) as exc:
        raise ProtocolError("bad_json", f"message is not valid JSON ({str(exc)[:80]}).") \
            from None
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        raise ProtocolError(
            "bad_message", 'message must be a JSON object with a string "type" '
            '("subscribe" or "ping").')
    kind = body["type"]
    if kind == "ping":
        return ClientMessage("ping", id=_check_id(body.get("id")))
    if kind == "subscribe":
        rate = body.get("max_rate_hz", 0)
        if (isinstance(rate, bool) or not isinstance(rate, (int, float))
                or not 0 <= rate <= MAX_RATE_HZ):  # NaN fails too; huge ints need no float()
            shown = repr(rate) if len(repr(rate)) <= 40 else repr(rate)[:37] + "..."
            raise ProtocolError(
                "bad_rate", f"max_rate_hz is {shown}; allowed is a number from 0 (every "
                f"frame) to {MAX_RATE_HZ:g}.")
        return ClientMessage("subscribe", max_rate_hz=float(rate))
    if kind in ("cancel_enrolment", "profiles"):
        return ClientMessage(kind)
    if kind == "use_profile":
        name = body.get("profile")
        if name is not None and not isinstance(name, str):
            raise ProtocolError("bad_profile", f"profile is {name!r}; send a profile name or "
                                "null to clear it.")
        return ClientMessage(kind, profile=name)
    if kind == "enrol":
        return _enrol(body)
    allowed = ", ".join(f'"{t}"' for t in CLIENT_TYPES)
    raise ProtocolError("unknown_type",
                        f"unknown message type {kind!r}; allowed types are {allowed}.")


def _enrol(body: dict[str, object]) -> ClientMessage:
    name, seconds = body.get("profile"), body.get("seconds", 20)
    emotions = body.get("emotions", [])
    if not isinstance(name, str):
        raise ProtocolError("bad_profile", f"profile is {name!r}; an enrolment needs a name, "
                            'e.g. {"type": "enrol", "profile": "me"}.')
    if (isinstance(seconds, bool) or not isinstance(seconds, (int, float))
            or not -1e9 < seconds < 1e9):  # NaN fails too; huge ints need no float()
        raise ProtocolError("bad_seconds", f"seconds is {seconds!r}; send a number such as 20.")
    if not isinstance(emotions, list) or not all(isinstance(e, str) for e in emotions):
        raise ProtocolError("bad_emotions", f"emotions is {emotions!r}; send a list of labels "
                            'such as ["happy", "sad"].')
    return ClientMessage("enrol", profile=name, seconds=float(seconds),
                         emotions=tuple(emotions))
