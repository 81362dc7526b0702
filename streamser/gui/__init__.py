"""The Qt dashboard (PySide6 + pyqtgraph): live emotion trajectories for the desk and the booth.

Entry point: :func:`streamser.gui.app.run_dashboard`. Importing this package does not import Qt;
``streamser.gui.app`` does.

Threads: only the Qt main thread touches widgets. A ~30 Hz QTimer drains the dashboard's
bounded subscriptions to the engine's buses (:mod:`streamser.gui.session`), folds the items into
preallocated arrays (:mod:`streamser.gui.history`) and calls ``setData``. Recording writes on its
own thread (:mod:`streamser.gui.recording`).
"""

from __future__ import annotations

__all__: list[str] = []
