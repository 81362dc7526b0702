"""Moved to :mod:`streamser.core.labels`; this name stays for ``streamser.training``."""

from __future__ import annotations

from streamser.core.labels import *  # noqa: F403
from streamser.core.labels import __all__ as __all__
