"""Where frames go: every output of a live session, and the registry the CLI reads.

An output implements :class:`streamser.session.Output` in one module and is registered once,
in :data:`OUTPUT_KINDS` below: its CLI flags and the frozen config they build. The session
(:mod:`streamser.session`) starts and stops outputs; the terminal view is added by the
headless runner itself.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from streamser.outputs import lsl, osc, recorders, websocket
from streamser.outputs.base import OutputKind

if TYPE_CHECKING:
    from streamser.session import OutputConfig

__all__ = ["OUTPUT_KINDS", "OutputKind", "add_output_arguments", "for_dashboard",
           "output_configs"]

OUTPUT_KINDS: tuple[OutputKind, ...] = (
    websocket.KIND,
    lsl.KIND,
    osc.KIND,
    recorders.FRAMES_KIND,
    recorders.AUDIO_KIND,
)
"""Every registered output, in start order (stop follows the same order)."""


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """Add every registered output's flags to ``streamser live``."""
    for kind in OUTPUT_KINDS:
        kind.add_arguments(parser)


def output_configs(args: argparse.Namespace) -> tuple[OutputConfig, ...]:
    """The configs the parsed flags ask for, in registry order."""
    made = (kind.from_args(args) for kind in OUTPUT_KINDS)
    return tuple(config for config in made if config is not None)


def for_dashboard(configs: tuple[OutputConfig, ...]
                  ) -> tuple[tuple[OutputConfig, ...], list[str]]:
    """Split configs into those the dashboard's sessions get, and the names of the others."""
    terminal_only = {kind.name for kind in OUTPUT_KINDS if not kind.dashboard}
    kept = tuple(c for c in configs if c.name not in terminal_only)
    return kept, [c.name for c in configs if c.name in terminal_only]
