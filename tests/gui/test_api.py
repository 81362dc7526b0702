"""The dashboard's public surface: options validation, __all__, Qt-free modules."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from streamser.core.labels import CANONICAL_LABELS
from streamser.gui.options import DashboardOptions

MODULES = ["app", "history", "live", "options", "recording", "session", "theme", "window",
           "widgets.avplane", "widgets.controls", "widgets.meters", "widgets.now",
           "widgets.status", "widgets.strips", "widgets.trajectories"]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist(name: str) -> None:
    """Every name in a module's __all__ is defined there."""
    module = importlib.import_module(f"streamser.gui.{name}")
    assert module.__all__
    for item in module.__all__:
        assert hasattr(module, item), f"{name}.{item}"


def test_qt_free_modules_import_without_qt() -> None:
    """Options, session, history and the colour map load without importing Qt."""
    code = ("import sys; import streamser.gui.options, streamser.gui.session, "
            "streamser.gui.history, streamser.gui.theme, streamser.core.prosody; "
            "print('PySide6' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_one_colour_per_label() -> None:
    """Every canonical label has its own colour."""
    from streamser.gui.theme import LABEL_COLORS, UNVOICED, label_color

    assert set(LABEL_COLORS) == set(CANONICAL_LABELS)
    assert len(set(LABEL_COLORS.values())) == len(LABEL_COLORS)
    assert label_color(None) == UNVOICED


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"history_s": 10.0}, "history_s"),
    ({"refresh_hz": 0.5}, "refresh_hz"),
    ({"seconds": 0.0}, "seconds"),
    ({"screenshot": Path("x.png")}, "screenshot needs seconds"),
])
def test_bad_options_are_refused(kwargs: dict[str, object], match: str) -> None:
    """Out-of-range options fail at construction with the value in the message."""
    with pytest.raises(ValueError, match=match):
        DashboardOptions(**kwargs)  # type: ignore[arg-type]
