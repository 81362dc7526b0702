"""Moved to :mod:`streamser.core.contract`; this name stays for ``streamser.training``."""

from __future__ import annotations

from streamser.core.contract import *  # noqa: F403
from streamser.core.contract import __all__ as __all__
