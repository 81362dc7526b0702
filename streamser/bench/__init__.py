"""``streamser bench``: measure latency, throughput, fan-out, memory and start-up on this machine.

Each suite is its own module and returns a plain dict (JSON-ready); :mod:`streamser.bench.report`
turns them into figures with targets, a terminal table, JSON and the Markdown report.

- :mod:`~streamser.bench.inference` — model latency per window (1 and 2 onnxruntime threads),
  real-time factor, whole-analysis cost per frame.
- :mod:`~streamser.bench.peer` — a wav2vec2-base-sized transformer with random weights (child
  process; needs the ``bench`` extra), timed interleaved with our model.
- :mod:`~streamser.bench.e2e` — voice-to-frame latency through the capture path to a websocket
  client (child process; private PulseAudio virtual microphone when available).
- :mod:`~streamser.bench.throughput` — concurrent real-time streams per core, batched.
- :mod:`~streamser.bench.fanout` — websocket subscribers at 20 frames/s (server and clients in
  separate processes).
- :mod:`~streamser.bench.startup` — time to first frame and RSS of ``streamser live --no-gui``.

Every child process is started in its own session and killed with its group when a suite ends,
fails or times out; sockets bind 127.0.0.1 only.
"""

from __future__ import annotations

__all__: list[str] = []
