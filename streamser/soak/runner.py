"""``streamser soak``: run ``streamser live`` for hours against healthy, slow, stalled, churning
and abusive websocket clients plus corrupt input, and sample the server as it goes.

The server is a child process (``python -m streamser.cli live`` on a looped copy of the demo
audio with NaN and 1e30 bursts written into it); the clients run on this process's asyncio loop;
every ``--sample-s`` seconds the child's RSS, open fds, threads, CPU time and stderr size are
read from ``/proc`` and ``report.json`` / ``report.md`` / ``samples.jsonl`` in ``--out`` are
rewritten, so a soak cut short still leaves its figures. Linux only (``/proc``).

Clients (times in seconds):

- ``healthy``: read everything; frame gaps, missing sequence numbers and latency are measured;
- ``slow``: read one message every 5 s; ``stalled``: never read (reconnect 5 s after a close);
- ``churn``: connect, read ``hello``, close, twice a second;
- ``abusive``: every 5 s a connection sends bad JSON, 2,000-deep nesting, a NaN ping id, a
  400-digit rate, a binary message, then a valid ping, and closes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from streamser.errors import ConfigError
from streamser.soak.metrics import ClientLog, ProcessSample, build_report

__all__ = ["SoakConfig", "main", "run_soak"]

_DEMO = Path(__file__).resolve().parent.parent.parent / "assets" / "demo.flac"


@dataclass(frozen=True)
class SoakConfig:
    """Soak settings; ``seconds`` is the run length, ``warmup_s`` is left out of the RSS slope."""

    seconds: float
    out: Path
    port: int = 8799
    healthy: int = 2
    slow: int = 2
    stalled: int = 1
    churn_per_s: float = 2.0
    sample_s: float = 15.0
    warmup_s: float = 600.0
    model: Path | None = None


def write_fault_audio(path: Path, source: Path = _DEMO) -> Path:
    """The demo audio as float WAV with faults: 10 NaN samples at 20 s, 1e30 for 0.1 s at 40 s,
    +inf at 60 s (every loop of the file repeats them)."""
    import soundfile as sf

    audio, rate = sf.read(str(source), dtype="float32")
    audio = np.asarray(audio, dtype=np.float32).reshape(len(audio), -1)[:, 0].copy()
    for at, value, n in ((20, np.nan, 10), (40, 1e30, rate // 10), (60, np.inf, 5)):
        start = int(at * rate)
        if start + n < len(audio):
            audio[start : start + n] = value
    sf.write(str(path), audio, rate, subtype="FLOAT")
    return path


def _proc_sample(pid: int, t: float, log: Path, alive: bool) -> ProcessSample:
    rss = threads = 0
    fds = 0
    cpu = 0.0
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    size = log.stat().st_size if log.exists() else 0
    return ProcessSample(t, rss / 1024.0, fds, threads, cpu, size, alive)


def _close_reason(exc: BaseException) -> str:
    rcvd = getattr(exc, "rcvd", None)
    if rcvd is not None:
        return f"{rcvd.code} {rcvd.reason}".strip()
    return type(exc).__name__


class _Clients:
    """The soak's websocket clients (asyncio thread only)."""

    def __init__(self, url: str, stop: asyncio.Event) -> None:
        self.url = url
        self.stop = stop
        self.logs = {k: ClientLog(k) for k in ("healthy", "slow", "stalled", "churn", "abusive")}
        self.open: set[Any] = set()  # every connection not yet closed, aborted at the end

    async def _connect(self, kind: str):  # type: ignore[no-untyped-def]
        from websockets.asyncio.client import connect

        self.logs[kind].connections += 1
        ws = await asyncio.wait_for(connect(self.url, max_size=2**20, open_timeout=10), 15)
        self.open.add(ws)
        return ws

    async def _close(self, ws: Any) -> None:
        self.open.discard(ws)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(), 5)
        ws.transport.abort()

    def abort_all(self) -> None:
        """Drop every connection still open (end of the soak)."""
        for ws in list(self.open):
            ws.transport.abort()
        self.open.clear()

    async def reader(self, kind: str, pause_s: float) -> None:
        """Read messages (``pause_s`` between reads), reconnecting after any close."""
        log = self.logs[kind]
        while not self.stop.is_set():
            try:
                ws = await self._connect(kind)
            except Exception as exc:
                log.failures += 1
                log.closed(f"connect: {type(exc).__name__}")
                await asyncio.sleep(2.0)
                continue
            last_seq: int | None = None
            last_t: float | None = None
            try:
                while not self.stop.is_set():
                    text = await ws.recv()
                    msg = json.loads(text)
                    now = time.monotonic()
                    if msg.get("type") == "frame":
                        latency = (time.time() - msg["wall_time"]) * 1000 + msg["latency_ms"]
                        log.frame(msg["seq"], last_seq, None if last_t is None else now - last_t,
                                  latency)
                        last_seq, last_t = msg["seq"], now
                    else:
                        log.reply(str(msg.get("type")))
                    if pause_s:
                        await asyncio.sleep(pause_s)
            except Exception as exc:
                log.closed(_close_reason(exc))
            finally:
                await self._close(ws)
            if kind != "healthy":
                await asyncio.sleep(5.0)

    async def stalled(self) -> None:
        """Connect and never read; reconnect 5 s after the server closes us."""
        log = self.logs["stalled"]
        while not self.stop.is_set():
            try:
                ws = await self._connect("stalled")
            except Exception as exc:
                log.failures += 1
                log.closed(f"connect: {type(exc).__name__}")
                await asyncio.sleep(5.0)
                continue
            ws.transport.pause_reading()  # really never read: let TCP back up
            waiter = asyncio.ensure_future(ws.wait_closed())
            stopper = asyncio.ensure_future(self.stop.wait())
            await asyncio.wait([waiter, stopper], return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if waiter.done():
                log.closed(f"{ws.close_code} {ws.close_reason or ''}".strip())
            self.open.discard(ws)
            ws.transport.abort()
            waiter.cancel()
            await asyncio.sleep(5.0)

    async def churn(self, per_s: float) -> None:
        """Connect, read hello, close, ``per_s`` times a second."""
        log = self.logs["churn"]
        while not self.stop.is_set():
            try:
                ws = await self._connect("churn")
                msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
                log.reply(str(msg.get("type")))
                await self._close(ws)
            except Exception as exc:
                log.failures += 1
                log.closed(_close_reason(exc))
            await asyncio.sleep(1.0 / per_s)

    async def abusive(self) -> None:
        """Every 5 s: one connection sending malformed messages, then a ping."""
        log = self.logs["abusive"]
        bad = ["{not json", "[" * 2000 + "]" * 2000, '{"type":"ping","id":NaN}',
               '{"type":"subscribe","max_rate_hz":' + "9" * 400 + "}", b"\x00\x01"]
        while not self.stop.is_set():
            try:
                ws = await self._connect("abusive")
                for message in [*bad, '{"type":"ping","id":1}']:
                    await ws.send(message)
                deadline = time.monotonic() + 5.0
                while time.monotonic() < deadline:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
                    log.reply(str(msg.get("type")) + (f":{msg['code']}" if "code" in msg else ""))
                    if msg.get("type") == "pong":
                        break
                await self._close(ws)
                log.closed("normal")
            except Exception as exc:
                log.failures += 1
                log.closed(_close_reason(exc))
            await asyncio.sleep(5.0)


async def _soak(config: SoakConfig, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    clients = _Clients(f"ws://127.0.0.1:{config.port}", stop)
    await asyncio.sleep(3.0)  # model load and bind
    tasks = [asyncio.create_task(clients.reader("healthy", 0.0)) for _ in range(config.healthy)]
    tasks += [asyncio.create_task(clients.reader("slow", 5.0)) for _ in range(config.slow)]
    tasks += [asyncio.create_task(clients.stalled()) for _ in range(config.stalled)]
    tasks += [asyncio.create_task(clients.churn(config.churn_per_s)),
              asyncio.create_task(clients.abusive())]
    samples: list[ProcessSample] = []
    t0 = time.monotonic()
    with (config.out / "samples.jsonl").open("w") as stream:
        while True:
            alive = proc.poll() is None
            sample = _proc_sample(proc.pid, time.monotonic() - t0, log_path, alive)
            samples.append(sample)
            stream.write(json.dumps(sample.__dict__, allow_nan=False) + "\n")
            stream.flush()
            report = build_report(samples, list(clients.logs.values()), config.warmup_s)
            _write_atomic(config.out / "report.json",
                          json.dumps(report.to_dict(), indent=1, allow_nan=False) + "\n")
            _write_atomic(config.out / "report.md", report.markdown("streamser soak report"))
            if stop.is_set() or not alive or sample.t >= config.seconds:
                break
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), config.sample_s)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    clients.abort_all()
    await asyncio.sleep(0.1)  # let the aborted transports finish closing


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def run_soak(config: SoakConfig) -> int:
    """Run one soak; returns 0 when the server survived to the end, 1 otherwise."""
    config.out.mkdir(parents=True, exist_ok=True)
    audio = write_fault_audio(config.out / "fault_audio.wav")
    log_path = config.out / "server.log"
    cmd = [sys.executable, "-m", "streamser.cli", "live", "--source", str(audio), "--loop",
           "--no-gui", "--quiet", "--ws-port", str(config.port)]
    if config.model is not None:
        cmd += ["--model", str(config.model)]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log,
                                cwd=Path(__file__).resolve().parent.parent.parent)
        try:
            asyncio.run(_soak(config, proc, log_path))
        finally:
            alive = proc.poll() is None
            if alive:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    report = json.loads((config.out / "report.json").read_text())
    print((config.out / "report.md").read_text(), end="")
    return 0 if alive and report["server_alive"] else 1


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hours", type=float, default=2.0, help="run length (default 2)")
    parser.add_argument("--out", type=Path, default=Path("soak-report"), help="report folder")
    parser.add_argument("--port", type=int, default=8799, help="websocket port of the server")
    parser.add_argument("--sample-s", type=float, default=15.0, help="seconds between samples")
    parser.add_argument("--warmup-min", type=float, default=10.0,
                        help="minutes left out of the RSS slope (default 10)")
    parser.add_argument("--model", type=Path, help="ONNX model (default: the shipped one)")


def _config(args: argparse.Namespace) -> SoakConfig:
    if not math.isfinite(args.hours) or args.hours <= 0:
        raise ConfigError(f"--hours {args.hours}: use a positive number, e.g. --hours 2.")
    return SoakConfig(seconds=args.hours * 3600.0, out=args.out, port=args.port,
                      sample_s=args.sample_s, warmup_s=args.warmup_min * 60.0,
                      model=args.model)


def register(subparsers: Any) -> None:
    """Add ``streamser soak`` to the ``streamser`` parser."""
    parser = subparsers.add_parser(
        "soak", help="run live for hours against hostile clients and corrupt input; report "
        "RSS, fds, threads, frame gaps and latency", description=__doc__.split("\n")[0])
    _add_arguments(parser)
    parser.set_defaults(handler=lambda args: run_soak(_config(args)))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m streamser.soak``; see the module docstring."""
    parser = argparse.ArgumentParser(prog="streamser soak", description=__doc__.split("\n")[0])
    _add_arguments(parser)
    try:
        return run_soak(_config(parser.parse_args(argv)))
    except ConfigError as exc:
        parser.error(str(exc))
