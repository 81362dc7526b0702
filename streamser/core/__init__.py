"""The sans-I/O core: everything that turns samples into frames and frames into text.

Modules here take arrays and dataclasses in and give arrays and dataclasses out. They start no
threads and touch no device, socket, event loop or GUI; ``tests/test_core_purity.py`` fails if
one of them imports ``threading``, ``asyncio``, ``sounddevice``, Qt or the I/O modules of the
package. One owner calls an object at a time (usually the engine's inference worker).

- :mod:`~streamser.core.frames` — :data:`SAMPLE_RATE`, :class:`AudioBlock`, :class:`Frame`
- :mod:`~streamser.core.conditioning` — any rate/channels to 16 kHz mono blocks
- :mod:`~streamser.core.ringbuffer`, :mod:`~streamser.core.windowing` — sliding windows
- :mod:`~streamser.core.vad`, :mod:`~streamser.core.smoothing`,
  :mod:`~streamser.core.speaker_norm`, :mod:`~streamser.core.prosody` — per-window analysis
- :mod:`~streamser.core.analyzer` — blocks in, frames out (the whole analysis)
- :mod:`~streamser.core.contract`, :mod:`~streamser.core.labels` — what a model declares
- :mod:`~streamser.core.protocol` — the websocket wire format (JSON text in and out)
- :mod:`~streamser.core.config` — typed source specs, control messages and live settings
- :mod:`~streamser.core.enrolment`, :mod:`~streamser.core.adapt`, :mod:`~streamser.core.passages`
  — calibration to one voice: collect and check an enrolment, adapt the model's head
"""

from __future__ import annotations

from streamser.core.frames import SAMPLE_RATE

__all__ = ["SAMPLE_RATE"]
