"""Files streamser ships — the model, the demo audio, the browser page — found with
:mod:`importlib.resources`, so a checkout, an editable install and an installed wheel all work
from any working directory.

In the repository, ``streamser/data/models`` and ``streamser/data/demo.flac`` are symlinks to
``models/`` and ``assets/demo.flac``; building a wheel copies the files into the package (see
``[tool.setuptools.package-data]`` in pyproject.toml). :data:`MODELS` is the one place that
names the model folder. Any ``*.onnx`` there is a candidate; :func:`default_model_path` takes
the newest by the version at the end of its file name (``streamser-facenet-s-1.1.0.onnx`` ->
1.1.0), so a new model is picked up by dropping it in, without a code change.
"""

from __future__ import annotations

import logging
import os
import re
from importlib.resources import as_file, files
from importlib.resources.abc import Traversable
from pathlib import Path

from streamser.errors import ModelContractError

__all__ = ["DATA", "MODELS", "default_model_path", "demo_audio_path", "model_version_key",
           "shipped_models", "web_file"]

log = logging.getLogger(__name__)

DATA: Traversable = files("streamser") / "data"
"""The package's data folder."""
MODELS: Traversable = DATA / "models"
"""Where shipped models live (the only place that says so)."""
WEB: Traversable = files("streamser") / "web"
"""The browser page's files."""

_VERSION = re.compile(r"(\d+(?:\.\d+)*)$")


def _path(item: Traversable) -> Path:
    """A real file-system path for a packaged file (wheels and checkouts unpack to files)."""
    with as_file(item) as path:  # a no-op for files on disk, which is how streamser installs
        return Path(path)


def model_version_key(path: Path) -> tuple[tuple[int, ...], str]:
    """Sort key: the dotted version at the end of the file name, then the name."""
    match = _VERSION.search(path.stem)
    numbers = tuple(int(x) for x in match.group(1).split(".")) if match else ()
    return numbers, path.name


def shipped_models() -> list[Path]:
    """Every ``*.onnx`` in :data:`MODELS`, oldest version first (empty when none)."""
    if not MODELS.is_dir():
        return []
    found = [_path(item) for item in MODELS.iterdir() if item.name.endswith(".onnx")]
    return sorted(found, key=model_version_key)


def default_model_path() -> Path:
    """The model the live engine loads when none is given.

    ``$STREAMSER_MODEL`` if set; otherwise the newest shipped model. Raises
    :class:`ModelContractError` saying what to do when there is none.
    """
    env = os.environ.get("STREAMSER_MODEL")
    if env:
        return Path(env)
    models = shipped_models()
    if not models:
        raise ModelContractError(
            f"no model found: {_path(MODELS)} holds no .onnx file. Pass --model PATH, set "
            "STREAMSER_MODEL, or train one with 'streamser train' and 'streamser export'."
        )
    if len(models) > 1:
        log.info("several shipped models (%s); using the newest, %s",
                 ", ".join(p.name for p in models), models[-1].name)
    return models[-1]


def demo_audio_path() -> Path | None:
    """The bundled demo recording, or None when it is not there."""
    item = DATA / "demo.flac"
    return _path(item) if item.is_file() else None


def web_file(name: str) -> bytes | None:
    """A file of the browser page (``index.html``, ``app.js``...), or None if there is none."""
    item = WEB / name
    return item.read_bytes() if item.is_file() else None
