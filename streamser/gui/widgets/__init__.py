"""Dashboard widgets. Each is created, updated and destroyed on the Qt main thread only."""

from __future__ import annotations

__all__: list[str] = []
