"""Saved voice profiles: small versioned JSON files in the user's config folder.

A profile is what one enrolment taught streamser about one voice (an
:class:`~streamser.core.adapt.Adaptation`) plus the facts needed to trust it later: the
model version and a digest of the model's head it was computed with, the date, and the
enrolment's speech time, level and pitch. Files live in
``platformdirs.user_config_path("streamser") / "profiles" / NAME.json`` (on Linux
``$XDG_CONFIG_HOME/streamser/profiles``, default ``~/.config/streamser/profiles``), or under
``$STREAMSER_PROFILES`` when set.

Rules: a profile made with another model (version or head) is refused with a message saying to
calibrate again; a corrupt, truncated or foreign file is reported as such and never crashes the
program (:meth:`ProfileStore.entries` shows it as unusable); writes are atomic (temporary file then
rename), so a crash mid-save leaves the old profile.

Called from the main thread (CLI, GUI) or the server's thread; each call opens its own file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from streamser.core.adapt import Adaptation, build_adaptation, default_method
from streamser.core.contract import ModelSpec
from streamser.core.enrolment import EnrolmentResult
from streamser.core.speaker_norm import SpeakerNormParams
from streamser.errors import ProfileError

__all__ = [
    "PROFILE_FORMAT",
    "PROFILE_VERSION",
    "Profile",
    "ProfileInfo",
    "ProfileStore",
    "check_name",
    "head_digest",
    "profiles_dir",
]

PROFILE_FORMAT = "streamser-profile"
PROFILE_VERSION = 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
_MAX_BYTES = 1 << 20


def profiles_dir() -> Path:
    """``$STREAMSER_PROFILES``, else the user config folder's ``profiles`` (XDG respected)."""
    env = os.environ.get("STREAMSER_PROFILES")
    if env:
        return Path(env)
    import platformdirs

    return platformdirs.user_config_path("streamser") / "profiles"


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid profile name; raise :class:`ProfileError` otherwise."""
    if not isinstance(name, str) or not _NAME.match(name) or name.endswith(".json"):
        raise ProfileError(
            f"profile name {name!r} is not allowed: use 1-40 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit (e.g. --profile me)."
        )
    return name


def head_digest(spec: ModelSpec) -> str:
    """A short fingerprint of the model's head and reference (its ``speaker_norm`` metadata)."""
    raw = spec.extra.get("speaker_norm", "")
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True, eq=False)
class Profile:
    """One voice's calibration. ``created`` is ISO 8601 UTC; ``speech_s`` seconds."""

    name: str
    model_version: str
    head_digest: str
    labels: tuple[str, ...]
    adaptation: Adaptation
    created: str
    speech_s: float
    level_dbfs: float
    pitch_hz: float
    enrolled: tuple[str, ...]
    passage: str | None = None

    def to_dict(self) -> dict[str, object]:
        """The JSON body."""
        return {
            "format": PROFILE_FORMAT, "version": PROFILE_VERSION, "name": self.name,
            "model_version": self.model_version, "head_digest": self.head_digest,
            "labels": list(self.labels), "created": self.created,
            "speech_s": round(self.speech_s, 2), "level_dbfs": round(self.level_dbfs, 1),
            "pitch_hz": None if self.pitch_hz != self.pitch_hz else round(self.pitch_hz, 1),
            "enrolled": list(self.enrolled), "passage": self.passage,
            "adaptation": self.adaptation.to_dict(),
        }

    @classmethod
    def from_dict(cls, body: object, source: str) -> Profile:
        """Parse and check a profile body; :class:`ProfileError` names what is wrong."""
        if not isinstance(body, dict) or body.get("format") != PROFILE_FORMAT:
            raise ProfileError(f"{source} is not a streamser profile (no \"format\": "
                               f"\"{PROFILE_FORMAT}\"); delete it or calibrate again.")
        version = body.get("version")
        if version != PROFILE_VERSION:
            raise ProfileError(
                f"{source} is profile format version {version!r}; this streamser reads version "
                f"{PROFILE_VERSION}. Calibrate again with 'streamser calibrate --profile "
                f"{body.get('name', 'NAME')}'.")
        try:
            labels = tuple(str(x) for x in body["labels"])
            adaptation_body = body["adaptation"]
            dim = len(adaptation_body["shift"])
            adaptation = Adaptation.from_dict(adaptation_body, dim, len(labels))
            pitch = body.get("pitch_hz")
            return cls(
                name=check_name(str(body["name"])),
                model_version=str(body["model_version"]),
                head_digest=str(body["head_digest"]),
                labels=labels,
                adaptation=adaptation,
                created=str(body["created"]),
                speech_s=float(body["speech_s"]),
                level_dbfs=float(body["level_dbfs"]),
                pitch_hz=float("nan") if pitch is None else float(pitch),
                enrolled=tuple(str(x) for x in body.get("enrolled", ())),
                passage=None if body.get("passage") is None else str(body["passage"]),
            )
        except ProfileError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise ProfileError(f"{source} is damaged ({type(exc).__name__}: {exc}); delete it "
                               "or calibrate again.") from None

    @classmethod
    def create(cls, name: str, spec: ModelSpec, params: SpeakerNormParams,
               result: EnrolmentResult, method: str | None = None,
               passage: str | None = None) -> Profile:
        """The profile of a finished enrolment (``method`` None: :func:`default_method`)."""
        reference = result.reference if spec.speaker_reference else None
        chosen = method or default_method(result.embeddings, reference)
        return cls(
            name=check_name(name), model_version=spec.model_version,
            head_digest=head_digest(spec), labels=spec.labels,
            adaptation=build_adaptation(params, spec.labels, chosen, result.embeddings,
                                        reference),
            created=utc_now(), speech_s=result.speech_s, level_dbfs=result.level_dbfs,
            pitch_hz=result.pitch_hz,
            enrolled=tuple(k for k in spec.labels if k in result.embeddings),
            passage=passage)

    def check_model(self, spec: ModelSpec) -> None:
        """Raise :class:`ProfileError` unless this profile was made with ``spec``'s model."""
        if (self.model_version != spec.model_version or self.head_digest != head_digest(spec)
                or self.labels != spec.labels):
            same = self.model_version == spec.model_version
            raise ProfileError(
                f"profile {self.name!r} was calibrated with model {self.model_version}"
                f"{' (other weights)' if same else ''}; the model now loaded is "
                f"{spec.model_version}. A profile only fits the model it was made with: run "
                f"'streamser calibrate --profile {self.name}' again (about 20 s).")


@dataclass(frozen=True)
class ProfileInfo:
    """A listing entry; ``problem`` is None for a readable profile."""

    name: str
    path: Path
    model_version: str | None
    created: str | None
    problem: str | None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready (for the websocket ``profiles`` list)."""
        return {"name": self.name, "model_version": self.model_version,
                "created": self.created, "problem": self.problem}


class ProfileStore:
    """Profiles in one folder (default :func:`profiles_dir`)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else profiles_dir()

    def path(self, name: str) -> Path:
        """Where profile ``name`` lives (the name is checked)."""
        return self.root / f"{check_name(name)}.json"

    def save(self, profile: Profile) -> Path:
        """Write atomically; raise :class:`ProfileError` when the folder is not writable."""
        path = self.path(profile.name)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{profile.name}.", suffix=".tmp", dir=self.root)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(profile.to_dict(), f, indent=1)
                f.write("\n")
            os.replace(tmp, path)
        except OSError as exc:
            raise ProfileError(f"cannot save profile {profile.name!r} in {self.root}: "
                               f"{exc.strerror or exc}. Set STREAMSER_PROFILES to a writable "
                               "folder.") from None
        return path

    def load(self, name: str) -> Profile:
        """Read profile ``name``; :class:`ProfileError` when missing, unreadable or damaged."""
        path = self.path(name)
        if not path.is_file():
            known = [i.name for i in self.entries()]
            hint = (f"saved profiles: {', '.join(known)}" if known
                    else "no profile is saved yet")
            raise ProfileError(f"no profile named {name!r} in {self.root} ({hint}). Create it "
                               f"with 'streamser calibrate --profile {name}'.")
        try:
            if path.stat().st_size > _MAX_BYTES:
                raise ProfileError(f"{path} is {path.stat().st_size} bytes, far too large for "
                                   "a profile; delete it or calibrate again.")
            text = path.read_text(encoding="utf-8")
            body = json.loads(text)
        except ProfileError:
            raise
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ProfileError(f"{path} cannot be read as a profile ({type(exc).__name__}: "
                               f"{exc}); delete it or calibrate again.") from None
        profile = Profile.from_dict(body, str(path))
        if profile.name != name:
            raise ProfileError(f"{path} holds profile {profile.name!r}, not {name!r}; rename "
                               "it back or calibrate again.")
        return profile

    def load_for(self, name: str, spec: ModelSpec) -> Profile:
        """:meth:`load`, then refuse a profile made with another model."""
        profile = self.load(name)
        profile.check_model(spec)
        return profile

    def entries(self) -> list[ProfileInfo]:
        """Every ``*.json`` in the folder, sorted by name; damaged ones carry a ``problem``."""
        if not self.root.is_dir():
            return []
        out = []
        for path in sorted(self.root.glob("*.json")):
            name = path.stem
            try:
                profile = self.load(name)
            except ProfileError as exc:
                out.append(ProfileInfo(name, path, None, None, str(exc)))
            else:
                out.append(ProfileInfo(name, path, profile.model_version, profile.created, None))
        return out

    def delete(self, name: str) -> bool:
        """Remove profile ``name``; False when there was none."""
        try:
            self.path(name).unlink()
        except FileNotFoundError:
            return False
        return True


def utc_now() -> str:
    """ISO 8601 UTC time to the second, e.g. ``2026-12-02T19:40:00Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
