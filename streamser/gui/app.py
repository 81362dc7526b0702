"""Dashboard entry point: :func:`run_dashboard` builds the QApplication and the window, runs the
Qt event loop on the calling thread (which must be the process's main thread) and returns an
exit code. The CLI calls it when a display is available and ``--no-gui`` is not given::

    from streamser.gui.app import DashboardOptions, SourceChoice, run_dashboard

    code = run_dashboard(make_engine, DashboardOptions(source=SourceChoice(path=wav),
                                                       screenshot=png, seconds=12.0))

``make_engine(choice: SourceChoice) -> Engine`` returns a ready, *not started* engine for a
device or file (raising :class:`streamser.errors.StreamserError` when it cannot); the dashboard
calls it again whenever the user picks another device or file, presses Start, or kiosk mode
recovers a lost device, and it stops every engine it got.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from streamser.gui.options import DashboardOptions
from streamser.gui.session import EngineFactory, EngineHost, SourceChoice

__all__ = ["DashboardOptions", "SourceChoice", "create_window", "run_dashboard"]

KIOSK_FONT_SCALE = 1.6


def _list_devices_default() -> Sequence[Any]:
    from streamser.devices import list_input_devices

    return list_input_devices()


def _settings(options: DashboardOptions) -> Any:
    from PySide6.QtCore import QSettings

    if options.settings_path is not None:
        return QSettings(str(options.settings_path), QSettings.Format.IniFormat)
    return QSettings("streamser", "streamser")


def create_window(engine_factory: EngineFactory, options: DashboardOptions) -> Any:
    """Build the window (a QApplication must exist), open the first source, show it.

    Returns the :class:`streamser.gui.window.DashboardWindow`. Main thread. A source that
    cannot be opened leaves the window up with the error in the status bar (kiosk mode keeps
    retrying).
    """
    from streamser.gui.window import DashboardWindow

    host = EngineHost(engine_factory, auto_recover=options.kiosk)
    list_devices: Callable[[], Sequence[Any]] = options.list_devices or _list_devices_default
    window = DashboardWindow(host, options, _settings(options), list_devices)
    if options.kiosk:
        # without a window manager nobody honours "full screen": size the window to the
        # screen ourselves, frameless, then ask for full screen too (for when there is one)
        from PySide6.QtCore import Qt

        window.setWindowFlag(Qt.WindowType.FramelessWindowHint, True)
        screen = window.screen()
        if screen is not None:
            window.setGeometry(screen.geometry())
        window.showFullScreen()
    else:
        window.show()
    window.open_source(window.initial_choice())
    return window


def run_dashboard(engine_factory: EngineFactory, options: DashboardOptions) -> int:
    """Run the dashboard until its window closes (or ``options.seconds`` pass); exit code.

    0 on a normal close, 1 when the screenshot could not be written. Ctrl+C / SIGTERM close
    the window through the same ordered shutdown. Call from the main thread.
    """
    from PySide6.QtCore import QTimer, qInstallMessageHandler
    from PySide6.QtWidgets import QApplication

    from streamser.gui.theme import apply_theme

    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("streamser")
    apply_theme(app, KIOSK_FONT_SCALE if options.kiosk else 1.0)
    forward: list[Any] = []
    previous_handler = qInstallMessageHandler(
        lambda kind, context, message: _qt_message(forward, kind, context, message))
    forward.append(previous_handler)
    window = create_window(engine_factory, options)
    if options.seconds is not None:
        QTimer.singleShot(round(options.seconds * 1000), window.finish)

    def _on_signal(signum: int, frame: object) -> None:
        window.close()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    # let Python run its signal handlers while Qt's loop is in C++
    wake = QTimer()
    wake.timeout.connect(lambda: None)
    wake.start(200)
    try:
        app.exec()
    finally:
        wake.stop()
        window.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        qInstallMessageHandler(previous_handler)
    return int(window.exit_code)


def _qt_message(forward: list[Any], kind: Any, context: Any, message: str) -> None:
    """Qt's messages go to the previous handler (or stderr), minus the offscreen platform's
    harmless note that it cannot propagate size hints."""
    if "propagateSizeHints" in message:
        return
    if forward and forward[0] is not None:
        forward[0](kind, context, message)
    else:
        print(f"qt: {message}", file=sys.stderr, flush=True)
