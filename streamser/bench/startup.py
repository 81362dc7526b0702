"""Start-up time and memory of the headless analyzer, run exactly as a user would.

Starts ``python -m streamser.cli live --no-gui --source assets/demo.flac --loop --ws-port 0``
(port 0: never collides with a running streamser), and measures from just before the process is
spawned to (a) its "source -> model" line on stderr (engine running) and (b) its first frame line
on stdout. Then it samples the resident set size (``VmRSS`` in ``/proc/PID/status``) once a
second for ``seconds`` and reports the last value, the peak (``VmHWM``), the growth over the
second half, and the CPU the analyzer used; finally SIGTERM, which must end it with code 0.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from streamser.bench._proc import BenchError, Child

__all__ = ["read_status_kb", "run_startup"]

_FRAME_LINE = re.compile(r"^\s*\d+\.\d+s\s")


def read_status_kb(pid: int, field: str) -> int | None:
    """A ``kB`` field of ``/proc/PID/status`` (``VmRSS``, ``VmHWM``), or None."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def _cpu_s(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def run_startup(model: Path | None, quick: bool, say: Callable[[str], None],
                all_outputs: bool = False) -> dict[str, Any]:
    """First frame and RSS of ``streamser live --no-gui`` on the demo file, looped;
    ``all_outputs`` adds ``--lsl --osc ... --record ... --record-audio ...``."""
    import socket
    import tempfile

    from streamser.bench.inference import demo_path

    seconds = 6.0 if quick else 60.0
    argv = [sys.executable, "-m", "streamser.cli", "live", "--no-gui", "--source",
            str(demo_path(Path(tempfile.gettempdir()))), "--loop", "--ws-port", "0"]
    if model is not None:
        argv += ["--model", str(model)]
    sink = None
    if all_outputs:
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sink.bind(("127.0.0.1", 0))
        folder = Path(tempfile.mkdtemp(prefix="streamser-bench-"))
        argv += ["--lsl", "streamser-bench", "--osc", f"127.0.0.1:{sink.getsockname()[1]}",
                 "--record", str(folder / "frames.jsonl"),
                 "--record-audio", str(folder / "audio.flac")]
    say(f"start-up and memory: {' '.join(argv[1:])} for {seconds:g} s")
    marks: dict[str, float] = {}
    frames = [0]
    t_spawn = time.monotonic()
    with Child(argv, stderr=subprocess.PIPE) as child:
        def read_out() -> None:
            assert child.proc.stdout is not None
            for line in child.proc.stdout:
                if _FRAME_LINE.match(line):
                    marks.setdefault("first_frame", time.monotonic())
                    frames[0] += 1

        def read_err() -> None:
            assert child.proc.stderr is not None
            for line in child.proc.stderr:
                if "-> model" in line:
                    marks.setdefault("ready", time.monotonic())
                elif "error" in line.lower():
                    marks.setdefault("error", time.monotonic())
                    say(f"analyzer: {line.strip()}")

        readers = [threading.Thread(target=f, daemon=True) for f in (read_out, read_err)]
        for r in readers:
            r.start()
        deadline = time.monotonic() + 30.0
        while "first_frame" not in marks and time.monotonic() < deadline:
            if child.proc.poll() is not None:
                raise BenchError(f"the analyzer exited with code {child.proc.returncode} "
                                 "before its first frame")
            time.sleep(0.005)
        if "first_frame" not in marks:
            raise BenchError("the analyzer printed no frame within 30 s")
        samples: list[tuple[float, int]] = []
        cpu0 = _cpu_s(child.pid)
        t_first = marks["first_frame"]
        while time.monotonic() - t_spawn < seconds:
            rss = read_status_kb(child.pid, "VmRSS")
            if rss is None:
                raise BenchError("the analyzer stopped while its memory was being sampled")
            samples.append((time.monotonic() - t_spawn, rss))
            time.sleep(min(1.0, max(0.0, seconds - (time.monotonic() - t_spawn))))
        rss_kb = read_status_kb(child.pid, "VmRSS") or samples[-1][1]
        hwm_kb = read_status_kb(child.pid, "VmHWM")
        cpu1 = _cpu_s(child.pid)
        t_end = time.monotonic()
        child.proc.terminate()
        try:
            code: int | None = child.proc.wait(10)
        except subprocess.TimeoutExpired:
            code = None
        for r in readers:
            r.join(2)
    if sink is not None:
        sink.close()
    half = [kb for t, kb in samples if t >= seconds / 2]
    growth = (half[-1] - half[0]) / 1024 / max(1e-9, seconds / 2) * 60 if len(half) > 1 else 0.0
    result = {
        "command": " ".join(["streamser", *argv[3:]]), "seconds": seconds,
        "ready_s": round(marks["ready"] - t_spawn, 3) if "ready" in marks else None,
        "first_frame_s": round(t_first - t_spawn, 3),
        "rss_mb": round(rss_kb / 1024, 1),
        "peak_rss_mb": round(hwm_kb / 1024, 1) if hwm_kb else None,
        "rss_growth_mb_per_min": round(growth, 2),
        "cpu_percent": round(100 * (cpu1 - cpu0) / (t_end - t_first), 1)
        if cpu0 is not None and cpu1 is not None else None,
        "frames": frames[0], "sigterm_exit_code": code,
    }
    say(f"first frame {result['first_frame_s']} s after start; RSS {result['rss_mb']} MB "
        f"after {seconds:g} s (peak {result['peak_rss_mb']} MB)")
    return result
