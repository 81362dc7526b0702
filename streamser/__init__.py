"""streamser: real-time speech emotion recognition.

Audio from a microphone or a file flows through a ring buffer into sliding fixed-interval windows;
an ONNX model classifies each window; emotion frames go to a Qt dashboard, the terminal, files and
websocket subscribers.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
