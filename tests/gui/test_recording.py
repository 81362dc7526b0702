"""The Record control's file outputs (no Qt): paths, writing, errors, idempotent stop."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from streamser.bus import Bus
from streamser.core.config import LiveSettings
from streamser.core.frames import AudioBlock, Frame
from streamser.errors import OutputError
from streamser.gui.recording import Recording, recording_paths


class StubEngine:
    def __init__(self) -> None:
        self.frames: Bus[Frame] = Bus("frames")
        self.audio: Bus[AudioBlock] = Bus("audio")
        self.configs: Bus[LiveSettings] = Bus("configs")


class ListWriter:
    def __init__(self, path: Path, fail: bool = False) -> None:
        self.path, self.items, self.closed, self.fail = path, [], False, fail

    def write(self, item: Any) -> None:
        if self.fail:
            raise OSError("disk full")
        self.items.append(item)

    def close(self) -> None:
        self.closed = True


def test_paths_are_timestamped_and_checked(tmp_path: Path) -> None:
    """Names carry the start time; unknown formats are refused."""
    paths = recording_paths(tmp_path, "csv", "wav", stamp=datetime(2026, 11, 22, 1, 2, 3))
    assert paths.frames.name == "streamser-20261122-010203.csv"
    assert paths.audio.name == "streamser-20261122-010203.wav"
    with pytest.raises(OutputError, match="mp3"):
        recording_paths(tmp_path, audio_format="mp3")


def test_writes_everything_published_between_start_and_stop(tmp_path: Path) -> None:
    """Items reach the writers on the outputs' threads; stop flushes, closes, joins."""
    engine = StubEngine()
    made: list[ListWriter] = []

    def make(path: Path) -> ListWriter:
        made.append(ListWriter(path))
        return made[-1]

    rec = Recording(engine, recording_paths(tmp_path / "new"), writers=(make, make))
    rec.start()
    assert rec.active and (tmp_path / "new").is_dir()
    for i in range(5):
        engine.audio.publish(AudioBlock(i * 10, np.zeros(10, np.float32), 0.0))
    time.sleep(0.12)
    rec.stop()
    rec.stop()
    assert not rec.active and rec.blocks_written == 5 and rec.dropped() == 0
    assert all(w.closed for w in made) and len(made[1].items) == 5
    assert not [t for t in threading.enumerate() if t.name.startswith("streamser-record")]
    elapsed = rec.elapsed_s
    time.sleep(0.02)
    assert rec.elapsed_s == elapsed  # the timer stops with the recording


def test_write_error_is_reported(tmp_path: Path) -> None:
    """A failing disk is reported as an error message, not a crash."""
    engine = StubEngine()
    rec = Recording(engine, recording_paths(tmp_path),
                    writers=(ListWriter, lambda p: ListWriter(p, fail=True)))
    rec.start()
    engine.audio.publish(AudioBlock(0, np.zeros(10, np.float32), 0.0))
    time.sleep(0.12)
    rec.stop()
    assert rec.error is not None and "disk full" in rec.error
