"""Websocket fan-out: how many subscribers at 20 frames/s get their frames with p99 < 50 ms.

Three kinds of process, all on 127.0.0.1:

- the **server** (``python -m streamser.bench.fanout --port 0``): the real
  :class:`~streamser.outputs.websocket.WebSocketServer` on a frame
  :class:`~streamser.bus.Bus` fed by a publisher thread at 20 Hz with full-size 8-label frames
  (``wall_time`` stamped at publish);
  prints ``port N``, answers ``cpu`` with its CPU seconds, stops on ``quit`` or end of stdin;
- **clients** (:mod:`streamser.bench.fanout_client`), each process holding a few hundred
  connections;
- this module's :func:`run_fanout` (bench process), stepping the subscriber count up until a
  step misses p99 < 50 ms or loses more than 1 % of frames.

Each step: connect every client, then measure the frames published in the next ``seconds``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from streamser.bench._proc import BenchError, Child

__all__ = ["main", "run_fanout"]

RATE_HZ = 20.0
P99_LIMIT_MS = 50.0
PER_PROCESS = 400


def _frame(seq: int) -> Any:
    from streamser.core.frames import Frame
    from streamser.core.labels import CANONICAL_LABELS

    labels = tuple(CANONICAL_LABELS)
    probs = tuple(round(0.1 + 0.01 * ((seq + i) % 7), 5) for i in range(len(labels)))
    return Frame(seq=seq, start_s=seq / RATE_HZ, end_s=seq / RATE_HZ + 2.0, wall_time=time.time(),
                 labels=labels, probs=probs, smoothed=probs, top_label="happy",
                 confidence=0.41234, arousal=0.31234, valence=0.52345, voiced=True,
                 voiced_prob=0.8333, level_dbfs=-31.21, latency_ms=3.412,
                 model_version="bench-fanout-frames")


def _serve(port: int) -> int:
    import os
    import resource

    from streamser.bus import Bus
    from streamser.core.frames import SAMPLE_RATE, Frame
    from streamser.core.labels import CANONICAL_LABELS
    from streamser.core.protocol import SessionInfo
    from streamser.outputs.websocket import ServerConfig, WebSocketServer

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    bus: Bus[Frame] = Bus("frames")
    info = SessionInfo("bench", "streamser bench", "bench-fanout-frames",
                       tuple(CANONICAL_LABELS), 2.0, 1 / RATE_HZ, SAMPLE_RATE, "bench publisher")
    server = WebSocketServer(bus, info, ServerConfig(host="127.0.0.1", port=port,
                                                     max_clients=10_000))
    server.start()
    stop = threading.Event()

    def publish() -> None:
        t0 = time.monotonic()
        seq = 0
        while not stop.is_set():
            seq += 1
            delay = t0 + seq / RATE_HZ - time.monotonic()
            if delay > 0 and stop.wait(delay):
                break
            bus.publish(_frame(seq))

    publisher = threading.Thread(target=publish, name="bench-publisher", daemon=True)
    publisher.start()
    print(f"port {server.port}", flush=True)
    try:
        for line in sys.stdin:
            cmd = line.strip()
            if cmd == "cpu":
                t = os.times()
                print(json.dumps({"cpu_s": t.user + t.system, "subscribers": server.subscribers,
                                  "sent": server.frames_sent}), flush=True)
            elif cmd == "quit":
                break
    finally:
        stop.set()
        publisher.join(2)
        server.stop()
    return 0


def _read_line(child: Child, timeout_s: float, what: str) -> str:
    """One stdout line from ``child`` within ``timeout_s`` (reader thread; raises BenchError)."""
    box: list[str] = []
    assert child.proc.stdout is not None
    stdout = child.proc.stdout
    reader = threading.Thread(target=lambda: box.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout_s)
    if not box or not box[0]:
        raise BenchError(f"{what}: no answer within {timeout_s:.0f} s")
    return box[0].strip()


def _percentile(hist: Counter[int], bin_ms: float, q: float) -> float:
    total = sum(hist.values())
    rank = q / 100.0 * total
    seen = 0
    for k in sorted(hist):
        seen += hist[k]
        if seen >= rank:
            return round((k + 0.5) * bin_ms, 2)
    return math.nan


def _step(port: int, server: Child, count: int, seconds: float) -> dict[str, Any]:
    procs = max(1, math.ceil(count / PER_PROCESS))
    sizes = [count // procs + (1 if i < count % procs else 0) for i in range(procs)]
    clients = [Child([sys.executable, "-m", "streamser.bench.fanout_client", "--port", str(port),
                      "--count", str(n)], stdin=True) for n in sizes]
    try:
        connected = 0
        for c in clients:
            line = _read_line(c, 30.0 + count / 50.0, "fan-out clients connecting")
            connected += int(line.split()[1])
        server.send("cpu")
        cpu0 = json.loads(_read_line(server, 10, "server"))
        t0 = time.time() + 1.0
        t1 = t0 + seconds
        for c in clients:
            c.send(f"go {t0} {t1}")
        results = [json.loads(_read_line(c, seconds + 30.0, "fan-out clients reporting"))
                   for c in clients]
        server.send("cpu")
        cpu1 = json.loads(_read_line(server, 10, "server"))
    finally:
        for c in clients:
            c.kill()
    hist: Counter[int] = Counter()
    for r in results:
        hist.update({int(k): v for k, v in r["hist"].items()})
    frames = sum(r["frames"] for r in results)
    published = len(set().union(*(r["walls"] for r in results)))  # frames sent in the window
    expected = published * count
    bin_ms = float(results[0]["bin_ms"])
    cpu = cpu1.get("cpu_s", 0.0) - cpu0.get("cpu_s", 0.0)
    span = seconds + 1.0 + (time.time() - t1)
    out = {
        "subscribers": count, "connected": connected, "client_processes": procs,
        "frames_received": frames, "frames_expected": expected,
        "delivered": round(frames / expected, 4) if expected else 0.0,
        "p50_ms": _percentile(hist, bin_ms, 50), "p99_ms": _percentile(hist, bin_ms, 99),
        "max_ms": round((max(hist) + 1) * bin_ms, 1) if hist else math.nan,
        "server_cpu_cores": round(cpu / span, 2),
        "clients_cpu_cores": round(sum(r["cpu_s"] for r in results) / seconds, 2),
        "closed_early": sum(r["closed_early"] for r in results),
    }
    out["ok"] = bool(connected == count and out["delivered"] >= 0.99
                     and out["p99_ms"] < P99_LIMIT_MS)
    return out


def run_fanout(quick: bool, say: Callable[[str], None],
               steps: Sequence[int] | None = None,
               server_module: str = "streamser.bench.fanout") -> dict[str, Any]:
    """Step the subscriber count up; the figure is the largest count that met the limit.

    ``server_module`` runs the server (its ``main`` like this module's): for trying a changed
    server against the same clients.
    """
    steps = list(steps or ([50] if quick else [250, 500, 1000, 1500, 2000, 2500, 3000]))
    seconds = 1.5 if quick else 10.0
    results = []
    with Child([sys.executable, "-m", server_module, "--port", "0"], stdin=True) as server:
        line = _read_line(server, 30, "fan-out server start")
        if not line.startswith("port "):
            raise BenchError(f"fan-out server said {line!r}")
        port = int(line.split()[1])
        for count in steps:
            r = _step(port, server, count, seconds)
            results.append(r)
            say(f"fan-out {count} subscribers @ {RATE_HZ:g} Hz: p50 {r['p50_ms']} ms, "
                f"p99 {r['p99_ms']} ms, delivered {100 * r['delivered']:.1f} %, CPU server "
                f"{r['server_cpu_cores']} + clients {r['clients_cpu_cores']} cores -> "
                f"{'ok' if r['ok'] else 'MISSED'}")
            if not r["ok"]:
                break
            time.sleep(0.5)
        server.send("quit")
    passed = [r["subscribers"] for r in results if r["ok"]]
    return {"rate_hz": RATE_HZ, "p99_limit_ms": P99_LIMIT_MS, "seconds_per_step": seconds,
            "steps": results, "max_subscribers": max(passed) if passed else 0,
            "largest_step": steps[-1],
            "per_client_process": PER_PROCESS}


def main(argv: Sequence[str] | None = None) -> int:
    """Server child entry point."""
    parser = argparse.ArgumentParser(prog="python -m streamser.bench.fanout")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    return _serve(args.port)


if __name__ == "__main__":
    sys.exit(main())
