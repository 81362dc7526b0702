"""Voice-to-frame latency through the real capture path to a websocket client.

:func:`run_e2e` (bench process) starts a private PulseAudio virtual microphone
(:mod:`streamser.bench.vmic`) when the machine has one, and runs the measurement in a child
process with that environment — ``python -m streamser.bench.e2e`` — which:

1. builds the live engine on ``MicSource("pulse")`` (else a :class:`FileSource` paced in real
   time), a :class:`WebSocketServer` on 127.0.0.1 port 0, and a websocket client thread;
2. plays the demo speech into the virtual sink (``paplay``) once capture has started;
3. for every frame the client receives, combines three clocks of the same process:

   - *in-block offset*: the window's last sample sits ``k`` samples before the end of the
     capture block that carried it, so it was captured ``k / 16000`` s before that block's
     callback (``arrival``); found from the engine's audio bus;
   - *engine*: ``Frame.latency_ms`` — block arrival to frame made (conditioning, VAD, model);
   - *websocket*: client receipt ``time.time()`` minus the frame's ``wall_time``.

   Their sum is **last sample captured -> frame received**. A sound at a random moment also
   waits for the window that ends after it (uniform over one hop): **voice-to-frame** adds that
   wait (sampled, seeded) to the measured latencies.

Not seen from inside: the audio device's own buffering before PortAudio's callback.
"""

from __future__ import annotations

import argparse
import bisect
import json
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from streamser.bench._proc import BenchError, emit_json, percentiles, run_json_child

__all__ = ["main", "run_e2e"]


def run_e2e(model: Path, quick: bool, say: Callable[[str], None],
            all_outputs: bool = False) -> dict[str, Any]:
    """Run the child with a virtual microphone when possible, else a paced file.

    ``all_outputs``: the child builds the session the CLI builds, with every output on
    (websocket + page, LSL, OSC, frame and audio recorders), instead of engine + websocket."""
    import tempfile

    from streamser.bench.inference import demo_path
    from streamser.bench.vmic import VirtualMic, virtual_mic_missing

    seconds = 4.0 if quick else 40.0
    args = ["--model", str(model), "--seconds", str(seconds), "--play",
            str(demo_path(Path(tempfile.gettempdir())))]
    if all_outputs:
        args.append("--all-outputs")
    timeout = seconds + 60.0
    missing = virtual_mic_missing()
    if missing is None:
        try:
            with VirtualMic() as vm:
                say("end to end: PulseAudio virtual microphone -> PortAudio -> engine -> "
                    f"websocket client, {seconds:g} s")
                return run_json_child("streamser.bench.e2e", [*args, "--source", "mic"],
                                      timeout, env=vm.env)
        except BenchError as exc:
            missing = str(exc)
    say(f"end to end: no virtual microphone ({missing}); file source paced in real time")
    result = run_json_child("streamser.bench.e2e", [*args, "--source", "file"], timeout)
    result["why_not_mic"] = missing
    return result


class _Client(threading.Thread):
    """Websocket client thread: records (receipt wall time, frame dict) for every frame."""

    def __init__(self, url: str) -> None:
        super().__init__(name="bench-ws-client", daemon=True)
        self.url = url
        self.received: list[tuple[float, dict[str, Any]]] = []
        self.connected = threading.Event()
        self.stop_event = threading.Event()
        self.error: str | None = None

    def run(self) -> None:
        from websockets.sync.client import connect

        try:
            with connect(self.url, compression=None, open_timeout=10) as ws:
                self.connected.set()
                while not self.stop_event.is_set():
                    try:
                        text = ws.recv(timeout=0.2)
                    except TimeoutError:
                        continue
                    now = time.time()
                    msg = json.loads(text)
                    if msg.get("type") == "frame":
                        self.received.append((now, msg))
        except Exception as exc:  # reported in the result; the bench goes on
            self.error = f"{type(exc).__name__}: {exc}"
            self.connected.set()


def _voice_to_frame(last_sample_ms: np.ndarray, hop_ms: float, n: int = 20000) -> np.ndarray:
    rng = np.random.default_rng(0)
    wait = rng.uniform(0.0, hop_ms, n)
    return wait + rng.choice(last_sample_ms, n)


def main(argv: Sequence[str] | None = None) -> int:
    """Child entry point; prints one JSON result line."""
    parser = argparse.ArgumentParser(prog="python -m streamser.bench.e2e")
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--source", choices=("mic", "file"), default="mic")
    parser.add_argument("--play", type=Path, required=True, help="speech to play / read")
    parser.add_argument("--hop", type=float, default=None)
    parser.add_argument("--all-outputs", action="store_true",
                        help="every output on: websocket, LSL, OSC, frame and audio recorders")
    args = parser.parse_args(argv)

    from streamser.bench._proc import Child
    from streamser.bus import Overflow
    from streamser.core.analyzer import AnalyzerConfig
    from streamser.engine import Engine, EngineConfig
    from streamser.model import ModelRunner
    from streamser.outputs.websocket import ServerConfig, WebSocketServer, session_info
    from streamser.sources import FileSource, MicSource

    def say(line: str) -> None:
        print(f"bench: {line}", file=sys.stderr, flush=True)

    runner = ModelRunner.load(args.model, threads=1, use_gpu=False)
    session = None
    sink = None
    if args.all_outputs:
        session, sink = _full_session(runner, args)
        engine = session.engine
        source = engine.source
    else:
        source = (MicSource("pulse") if args.source == "mic"
                  else FileSource(args.play, realtime=True, loop=True))
        engine = Engine(runner, source, EngineConfig(analyzer=AnalyzerConfig(hop_s=args.hop)))
    hop_s = engine.stats().hop_s
    audio = engine.audio.subscribe("bench", 1 << 16, Overflow.DROP_OLDEST)
    server = None if session is not None else WebSocketServer(
        engine.frames, session_info(engine.spec, hop_s, source.name),
        ServerConfig(host="127.0.0.1", port=0))
    player: Child | None = None
    client: _Client | None = None
    blocks: list[tuple[int, int, float]] = []  # (start_sample, end_sample, arrival)
    try:
        if session is not None:
            session.start()
            port = session.output("websocket").port
        else:
            assert server is not None
            server.start()
            port = server.port
        client = _Client(f"ws://127.0.0.1:{port}")
        client.start()
        client.connected.wait(10)
        if client.error:
            raise BenchError(f"websocket client failed: {client.error}")
        if session is None:
            engine.start()
        t_start = time.monotonic()
        while engine.stats().blocks == 0 and time.monotonic() - t_start < 10:
            time.sleep(0.02)  # PortAudio's first stream takes ~2 s to deliver
        if engine.stats().blocks == 0:
            raise BenchError(f"{source.name}: no audio captured in 10 s")
        first_block_s = time.monotonic() - t_start
        if args.source == "mic":
            player = Child(["paplay", "-d", "vsink", str(args.play)])
        measure_from = time.time() + 1.0  # skip the zero-padded start
        deadline = time.monotonic() + args.seconds + 1.0
        while time.monotonic() < deadline and not engine.finished.is_set():
            for b in audio.drain():
                blocks.append((b.start_sample, b.end_sample, b.arrival))
            time.sleep(0.05)
        stats = engine.stats()
        status_flags = getattr(source, "status_flags", 0)
    finally:
        if player is not None:
            player.kill()
        engine.stop()
        time.sleep(0.1)
        if client is not None:
            client.stop_event.set()
            client.join(3)
        if server is not None:
            server.stop()
        if session is not None:
            session.stop()
        if sink is not None:
            sink.close()
    for b in audio.drain():
        blocks.append((b.start_sample, b.end_sample, b.arrival))
    assert client is not None
    rate = engine.spec.sample_rate
    ends = [b[1] for b in blocks]
    engine_ms, ws_ms, offset_ms, total_ms = [], [], [], []
    voiced = 0
    for recv_wall, msg in client.received:
        if msg["wall_time"] < measure_from:
            continue
        end_sample = round(msg["end"] * rate)
        i = bisect.bisect_left(ends, end_sample)
        if i >= len(blocks) or blocks[i][0] >= end_sample:
            continue  # the carrying block was not seen (should not happen)
        offset = (blocks[i][1] - end_sample) / rate * 1000.0
        ws = (recv_wall - msg["wall_time"]) * 1000.0
        engine_ms.append(msg["latency_ms"])
        ws_ms.append(ws)
        offset_ms.append(offset)
        total_ms.append(offset + msg["latency_ms"] + ws)
        voiced += bool(msg["voiced"])
    if len(total_ms) < 3:
        raise BenchError(f"only {len(total_ms)} frames reached the websocket client")
    block_ms = [(b[1] - b[0]) / rate * 1000.0 for b in blocks]
    v2f = _voice_to_frame(np.asarray(total_ms), hop_s * 1000.0)
    emit_json({
        "path": "virtual-mic" if args.source == "mic" else "file-paced",
        "source": source.name, "hop_s": hop_s, "seconds": args.seconds,
        "first_block_s": round(first_block_s, 3),
        "frames": len(total_ms), "voiced_frames": voiced,
        "last_sample_to_client_ms": percentiles(total_ms),
        "voice_to_frame_ms": percentiles(list(v2f)),
        "engine_ms": percentiles(engine_ms), "websocket_ms": percentiles(ws_ms),
        "in_block_offset_ms": percentiles(offset_ms),
        "block_ms": percentiles(block_ms, (50,)),
        "blocks": stats.blocks, "dropped_blocks": stats.dropped_blocks,
        "gap_s": round(stats.gap_s, 4), "portaudio_status_flags": status_flags,
        "engine_state": stats.state.value, "engine_error": stats.error,
        "outputs": sorted(session.status().outputs) if session is not None else ["websocket"],
        "losses": session.status().losses() if session is not None else {},
    })
    return 0


def _full_session(runner: Any, args: argparse.Namespace) -> tuple[Any, Any]:
    """The session ``streamser live --lsl --osc ... --record ... --record-audio ...`` builds,
    and the UDP socket OSC goes to (bound, never read: the kernel drops what overflows)."""
    import socket
    import tempfile

    from streamser.core.analyzer import AnalyzerConfig
    from streamser.core.config import SourceSpec
    from streamser.outputs.lsl import LslConfig
    from streamser.outputs.osc import OscConfig
    from streamser.outputs.recorders import AudioFileConfig, FrameFileConfig
    from streamser.outputs.websocket import ServerConfig
    from streamser.session import build_session

    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    folder = Path(tempfile.mkdtemp(prefix="streamser-bench-"))
    spec = (SourceSpec.mic("pulse") if args.source == "mic"
            else SourceSpec.file(args.play, loop=True))
    outputs = (ServerConfig(host="127.0.0.1", port=0), LslConfig("streamser-bench"),
               OscConfig("127.0.0.1", sink.getsockname()[1]),
               FrameFileConfig(folder / "frames.jsonl"), AudioFileConfig(folder / "audio.flac"))
    return build_session(runner, spec, AnalyzerConfig(hop_s=args.hop), outputs), sink


if __name__ == "__main__":
    sys.exit(main())
