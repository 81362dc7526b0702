"""The ``streamser`` command line: ``live``, ``analyze``, ``calibrate``, ``profiles``, ``devices``
(+ ``train``, ``evaluate``, ``export`` with the train extra, and ``bench``).

``main(argv)`` parses, builds frozen option objects and returns an exit code, so tests call it
directly. User errors (:class:`StreamserError`) print one line and exit 2; no tracebacks.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from streamser import __version__
from streamser.core.analyzer import AnalyzerConfig, check_hop, check_smoothing
from streamser.core.config import SourceSpec
from streamser.core.frames import SAMPLE_RATE
from streamser.errors import ConfigError, StreamserError, one_line
from streamser.outputs import add_output_arguments, for_dashboard, output_configs

__all__ = ["main"]


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return value


def _add_analysis_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=Path, help="ONNX model (default: $STREAMSER_MODEL, else "
                   "the newest shipped model)")
    p.add_argument("--hop", type=_positive_float, help="seconds between windows "
                   "(default: the model's, at most 0.5)")
    p.add_argument("--smooth", type=_positive_float, default=1.5,
                   help="smoothing time constant in seconds, 0 = off (default 1.5)")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime threads (default 1)")
    p.add_argument("--speaker-norm", action="store_true", help="adapt to the speaker: re-score "
                   "windows with the session's running embedding mean (after ~5 s of speech)")
    p.add_argument("--session-prior", action=argparse.BooleanOptionalAction, default=True,
                   help="re-weight emotions by how often the model hears each in this voice, "
                   "after 20 voiced windows; forgets the voice after 60 s without speech "
                   "(default on; measured in docs/model/MODEL2.md)")
    p.add_argument("--voice-reference", action=argparse.BooleanOptionalAction, default=False,
                   help="speaker-relative models: hear each window relative to this voice's "
                   "running spectrum, after 8 voiced windows (default off: measured worse on "
                   "one corpus; a profile's neutral reading is used whenever a profile has one)")
    p.add_argument("--profile", help="apply a voice profile made with 'streamser calibrate' "
                   "(frames then carry \"profile\": NAME)")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamser", description="Real-time speech emotion "
                                     "recognition: live emotion trajectories from your voice.")
    parser.add_argument("--version", action="version", version=f"streamser {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    live = sub.add_parser("live", help="analyse a microphone, file or stdin live")
    live.add_argument("--source", default="mic", help="'mic' (default), an audio file, or '-' "
                      "for raw signed 16-bit PCM on stdin")
    live.add_argument("--device", help="input device index or part of its name "
                      "(see 'streamser devices')")
    _add_analysis_options(live)
    live.add_argument("--no-gui", action="store_true", help="print frames to the terminal")
    live.add_argument("--kiosk", action="store_true", help="dashboard full screen (booth mode)")
    live.add_argument("--kiosk-reset", type=_positive_float, default=3.0, metavar="MIN",
                      help="kiosk: forget a calibrated visitor after this many minutes without "
                      "speech (default 3)")
    live.add_argument("--screenshot", type=Path, help="save a dashboard screenshot and exit")
    live.add_argument("--seconds", type=_positive_float, help="stop after this many seconds")
    live.add_argument("--fast", action="store_true", help="read a file as fast as possible "
                      "instead of in real time")
    live.add_argument("--loop", action="store_true", help="restart a file at its end")
    live.add_argument("--rate", type=int, default=SAMPLE_RATE, help="stdin sample rate (Hz)")
    live.add_argument("--channels", type=int, default=1, help="stdin channel count")
    live.add_argument("--quiet", action="store_true", help="no per-frame terminal lines")
    add_output_arguments(live)

    analyze = sub.add_parser("analyze", help="write the emotion timeline of audio files")
    analyze.add_argument("files", nargs="+", type=Path, help="WAV/FLAC/OGG files")
    analyze.add_argument("--out", type=Path, required=True, help="frames.jsonl or frames.csv")
    _add_analysis_options(analyze)

    calibrate = sub.add_parser("calibrate", help="calibrate to your voice: read a short "
                               "passage, save a profile for --profile")
    calibrate.add_argument("--profile", default="me", help="profile name (default: me)")
    where = calibrate.add_mutually_exclusive_group()
    where.add_argument("--device", help="input device index or part of its name")
    where.add_argument("--source", type=Path, help="enrol from a recording instead of the "
                       "microphone (no questions asked; for scripts)")
    calibrate.add_argument("--model", type=Path, help="ONNX model (default: the shipped one)")
    calibrate.add_argument("--seconds", type=_positive_float, default=20.0,
                           help="seconds of speech to collect (default 20)")
    calibrate.add_argument("--language", default=os.environ.get("LANG", "en")[:2] or "en",
                           help="passage language: en, de or es (default: from $LANG)")
    calibrate.add_argument("--emotions", action="store_true", help="after the passage, say "
                           "one sentence in each of five emotions (a stronger profile)")

    sub.add_parser("profiles", help="list saved voice profiles")
    sub.add_parser("devices", help="list audio input devices (each once; default marked)")

    try:
        from streamser.training.commands import register
    except ImportError:
        pass
    else:
        register(sub)
    from streamser.soak.runner import register as register_soak

    register_soak(sub)
    try:
        from streamser.bench.cli import register as register_bench
    except ImportError:
        pass
    else:
        register_bench(sub)
    return parser


def _analyzer_config(args: argparse.Namespace) -> AnalyzerConfig:
    """Validated analysis settings (before any device or file is opened)."""
    if args.hop is not None:
        check_hop(args.hop)
    return AnalyzerConfig(hop_s=args.hop, smoothing_s=check_smoothing(args.smooth),
                          speaker_norm=args.speaker_norm, session_prior=args.session_prior,
                          voice_reference=args.voice_reference)


def _display_available() -> bool:
    if os.environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) or \
        sys.platform in ("win32", "darwin")


def _cmd_live(args: argparse.Namespace) -> int:
    from streamser.app import LiveOptions, run_headless

    if args.threads < 1:
        raise ConfigError(f"--threads {args.threads}: use 1 or more.")
    options = LiveOptions(
        source=SourceSpec.parse(args.source, device=args.device, realtime=not args.fast,
                                loop=args.loop, rate=args.rate, channels=args.channels),
        model=args.model,
        threads=args.threads,
        analyzer=_analyzer_config(args),
        outputs=output_configs(args),
        seconds=args.seconds,
        quiet=args.quiet,
        profile=args.profile,
    )
    want_gui = not args.no_gui and args.source != "-" and (
        args.screenshot is not None or args.kiosk or _display_available())
    problem = _qt_problem() if want_gui and args.screenshot is None else None
    if problem is not None:
        print(f"streamser: the dashboard cannot start here ({problem}); running in the "
              "terminal (scripts/run installs Qt's libraries; --no-gui skips this check)",
              file=sys.stderr)
    elif want_gui:
        try:
            from streamser.gui.app import DashboardOptions
            from streamser.gui.live import run_live_dashboard
        except ImportError as exc:
            print(f"streamser: dashboard unavailable ({exc}); running in the terminal",
                  file=sys.stderr)
        else:
            _, terminal_only = for_dashboard(options.outputs)
            if terminal_only:
                print(f"streamser: {', '.join(terminal_only)} apply to --no-gui; in the "
                      "dashboard use its Record button", file=sys.stderr)
            return run_live_dashboard(options, DashboardOptions(
                kiosk=args.kiosk, screenshot=args.screenshot, seconds=args.seconds,
                kiosk_reset_s=60.0 * args.kiosk_reset))
    return run_headless(options)


def _qt_problem() -> str | None:
    """Why Qt cannot open a window here, or None when it can.

    Qt aborts the whole process (exit 134) when its platform plugin cannot load, e.g. on a
    desktop without ``libxcb-cursor0`` or with a dead ``DISPLAY``; so a child process tries
    first (about half a second). Offscreen and minimal platforms are not checked.
    """
    if os.environ.get("QT_QPA_PLATFORM", "").split(":")[0] in ("offscreen", "minimal"):
        return None
    probe = "from PySide6.QtWidgets import QApplication; QApplication(['streamser'])"
    try:
        proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"Qt check failed: {exc}"
    if proc.returncode == 0:
        return None
    lines = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
    useful = [line for line in lines if "needed" in line or "could not" in line.lower()]
    return one_line((useful or lines or [f"exit {proc.returncode}"])[0])[:200]


def _cmd_analyze(args: argparse.Namespace) -> int:
    from streamser.analyze import analyze_files

    return analyze_files(args.files, args.out, _analyzer_config(args), args.model, args.threads,
                         profile=args.profile)


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from streamser.calibration.terminal import CalibrateOptions, run_calibrate
    from streamser.core.passages import PROMPTED_EMOTIONS

    source = (SourceSpec.file(args.source, realtime=False) if args.source is not None
              else SourceSpec.mic(args.device))
    return run_calibrate(CalibrateOptions(
        profile=args.profile, source=source, model=args.model, seconds=args.seconds,
        language=args.language, emotions=PROMPTED_EMOTIONS if args.emotions else ()))


def _cmd_profiles(args: argparse.Namespace) -> int:
    from streamser.calibration.profiles import ProfileStore

    store = ProfileStore()
    entries = store.entries()
    if not entries:
        print(f"no voice profiles in {store.root}; make one with 'streamser calibrate'",
              file=sys.stderr)
        return 0
    for e in entries:
        print(f"{e.name}: " + (f"model {e.model_version}, made {e.created}" if e.problem is None
                               else f"unusable: {e.problem}"))
    return 0


def _cmd_devices(args: argparse.Namespace) -> int:
    from streamser.devices import list_input_devices

    devices = list_input_devices()
    if not devices:
        print("no audio input devices found", file=sys.stderr)
        return 1
    for device in devices:
        print(device.describe())
    return 0


class _OneLineFormatter(logging.Formatter):
    """Log messages on one line each (names with newlines cannot forge lines)."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self._inner = inner or logging.Formatter("streamser: %(levelname)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.msg, record.args = one_line(record.getMessage()), None
        return self._inner.format(record)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 runtime failure, 2 user error)."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="streamser: %(levelname)s: %(message)s")
    for log_handler in logging.getLogger().handlers:
        log_handler.setFormatter(_OneLineFormatter(log_handler.formatter))
    if args.command is None:
        parser.print_help()
        return 2
    handlers = {"live": _cmd_live, "analyze": _cmd_analyze, "devices": _cmd_devices,
                "calibrate": _cmd_calibrate, "profiles": _cmd_profiles}
    try:
        handler = handlers.get(args.command) or args.handler
        return int(handler(args))
    except StreamserError as exc:
        print(f"streamser: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
