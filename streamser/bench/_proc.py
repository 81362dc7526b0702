"""Child processes for the benchmarks: started in their own session, always killed at the end.

A child suite is ``python -m streamser.bench.<module> ...`` that prints progress on stderr and one
JSON object as the last line of stdout. :func:`run_json_child` runs one and returns that object.
:class:`Child` is the context manager behind it, also used for long-running helpers (websocket
server, client processes, the headless analyzer).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import IO, Any

__all__ = ["BenchError", "Child", "emit_json", "percentiles", "run_json_child"]


class BenchError(RuntimeError):
    """A benchmark could not produce its figure (the message says why)."""


class Child:
    """A subprocess in its own process group; leaving the ``with`` block kills the group.

    ``stdin``/``stdout`` are pipes (text, line-buffered); stderr goes to ``stderr`` (default:
    inherited, so progress lines show).
    """

    def __init__(self, argv: Sequence[str], env: Mapping[str, str] | None = None,
                 stderr: int | IO[Any] | None = None, stdin: bool = False) -> None:
        self.argv = list(argv)
        full_env = dict(os.environ)
        full_env.update(env or {})
        full_env.setdefault("PYTHONUNBUFFERED", "1")
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=stderr, text=True, bufsize=1, env=full_env,
            start_new_session=True,
        )
        self.started = time.monotonic()

    @property
    def pid(self) -> int:
        """The child's process id (also its process group id)."""
        return self.proc.pid

    def send(self, line: str) -> None:
        """Write one line to the child's stdin."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def kill(self, grace_s: float = 3.0) -> None:
        """SIGTERM the child's group, wait ``grace_s``, then SIGKILL it. Idempotent."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # stragglers left in the group
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(2.0)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def __enter__(self) -> Child:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.kill()


def _module_argv(module: str, args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", module, *args]


def run_json_child(module: str, args: Sequence[str], timeout_s: float,
                   env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Run ``python -m module args`` and return the JSON object on its last stdout line.

    Raises :class:`BenchError` on timeout, a non-zero exit, or output that is not JSON.
    """
    with Child(_module_argv(module, args), env=env) as child:
        try:
            out, _ = child.proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise BenchError(f"{module} did not finish within {timeout_s:.0f} s") from None
        lines = [line for line in (out or "").splitlines() if line.strip()]
        if child.proc.returncode != 0:
            tail = lines[-1] if lines else ""
            raise BenchError(f"{module} exited with code {child.proc.returncode} {tail[:300]}")
        if not lines:
            raise BenchError(f"{module} printed no result")
        try:
            result = json.loads(lines[-1])
        except json.JSONDecodeError:
            raise BenchError(f"{module} printed no JSON result: {lines[-1][:300]}") from None
        if not isinstance(result, dict):
            raise BenchError(f"{module} printed {type(result).__name__}, expected an object")
        return result


def emit_json(result: Mapping[str, Any]) -> None:
    """Print a child's result: one JSON line on stdout (the protocol of :func:`run_json_child`)."""
    sys.stdout.write(json.dumps(result, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def percentiles(values: Sequence[float],
                points: Sequence[float] = (50, 95, 99)) -> dict[str, float]:
    """``{"p50": ..., "p95": ..., "p99": ..., "mean", "max", "n"}`` of ``values`` (empty -> n=0)."""
    import numpy as np

    if len(values) == 0:
        return {"n": 0}
    arr = np.asarray(values, dtype=np.float64)
    out = {f"p{p:g}": round(float(np.percentile(arr, p)), 4) for p in points}
    out["mean"] = round(float(arr.mean()), 4)
    out["max"] = round(float(arr.max()), 4)
    out["n"] = len(arr)
    return out
