"""streamser.core stays sans-I/O: no threads, event loops, devices, sockets or Qt in it."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parent.parent / "streamser" / "core"

#: top-level modules a core module must not import (directly, at any place in the file)
FORBIDDEN = {"threading", "asyncio", "sounddevice", "PySide6", "pyqtgraph", "socket", "queue",
             "concurrent", "multiprocessing", "selectors", "websockets", "onnxruntime",
             "soundfile", "subprocess"}
#: streamser modules outside the core that the core may use
ALLOWED_STREAMSER = {"streamser.errors"}


def imported_modules(source: str) -> set[str]:
    """Every module name an ``import`` or ``from ... import`` statement in ``source`` names."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def violations(source: str) -> list[str]:
    """The forbidden imports of one module's source."""
    bad = []
    for name in sorted(imported_modules(source)):
        top = name.split(".")[0]
        if top in FORBIDDEN:
            bad.append(name)
        elif top == "streamser" and not (name == "streamser" or name.startswith("streamser.core")
                                         or name in ALLOWED_STREAMSER):
            bad.append(name)
    return bad


def core_modules() -> list[Path]:
    return sorted(CORE.glob("*.py"))


def test_the_checker_catches_io_imports() -> None:
    """The check can fail: each kind of forbidden import is reported."""
    source = ("import threading\nfrom asyncio import Event\nimport sounddevice as sd\n"
              "from PySide6.QtCore import QTimer\nfrom streamser.engine import Engine\n"
              "from streamser.core.frames import Frame\nimport numpy\n")
    assert violations(source) == ["PySide6.QtCore", "asyncio", "sounddevice",
                                  "streamser.engine", "threading"]


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: p.name)
def test_core_module_imports_no_io(path: Path) -> None:
    """No core module imports threads, event loops, devices, sockets, Qt or I/O modules."""
    assert violations(path.read_text(encoding="utf-8")) == []


def test_importing_the_core_loads_no_io_package() -> None:
    """In a fresh interpreter, importing every core module pulls in no I/O package either."""
    names = [f"streamser.core.{p.stem}" for p in core_modules() if p.stem != "__init__"]
    code = ("import json, sys\n" + "".join(f"import {n}\n" for n in names)
            + "print(json.dumps(sorted(sys.modules)))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], check=True,
                                       capture_output=True, text=True).stdout)
    heavy = {"asyncio", "sounddevice", "PySide6", "pyqtgraph", "websockets", "onnxruntime"}
    assert [m for m in loaded if m.split(".")[0] in heavy] == []
    outside = [m for m in loaded if m.startswith("streamser") and m != "streamser"
               and not m.startswith("streamser.core") and m not in ALLOWED_STREAMSER]
    assert outside == []


def test_one_sample_rate() -> None:
    """The analysis rate is declared once (core/frames.py); everything else imports it."""
    import re

    package = CORE.parent
    declared = re.compile(r"^\s*[A-Z_]*RATE[A-Z_]*\s*(?::\s*\w+\s*)?=\s*16_?000\b", re.M)
    found = [str(path.relative_to(package)) for path in sorted(package.rglob("*.py"))
             if "training" not in path.parts and declared.search(path.read_text("utf-8"))]
    assert found == ["core/frames.py"]
