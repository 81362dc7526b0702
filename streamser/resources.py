"""Files streamser ships: the model and the demo audio (found the same way from a checkout
and from an installed wheel)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["demo_audio_path"]

_CHECKOUT = Path(__file__).resolve().parent.parent


def demo_audio_path() -> Path | None:
    """The bundled demo recording, or None when it is not there."""
    path = _CHECKOUT / "assets" / "demo.flac"
    return path if path.is_file() else None
