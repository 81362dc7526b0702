"""The same-run peer: a wav2vec2-base-sized transformer with random weights (child process).

Built from ``transformers.Wav2Vec2Config()`` defaults (12 layers, 768 wide, ~94.6 M parameters)
plus the library's sequence-classification head with our label count, and a softmax — no
download. By default it is exported once to ONNX (opset 17) in a cache folder and run with
onnxruntime, like our model: same window, same thread counts, same session options. The two
models are timed interleaved (one peer call, then our calls), so load from other processes hits
both alike. ``--backend torch`` runs the peer in PyTorch eager instead (used by ``--quick`` when
no export is cached: exporting takes ~25 s); the result says which backend ran.

Without torch or transformers the result is ``{"status": "skipped", "message": ...}``.

Run as ``python -m streamser.bench.peer --model OURS.onnx --cache DIR [--runs N] [--backend ..]``;
prints one JSON line (see :func:`streamser.bench._proc.run_json_child`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np

from streamser.bench._proc import emit_json, percentiles

__all__ = ["default_cache_dir", "main", "peer_onnx_path"]

OPSET = 17


def default_cache_dir() -> Path:
    """``$STREAMSER_BENCH_CACHE``, else ``$XDG_CACHE_HOME/streamser/bench`` (~/.cache/...)."""
    env = os.environ.get("STREAMSER_BENCH_CACHE")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "streamser" / "bench"


def peer_onnx_path(cache: Path, n_labels: int) -> Path:
    """Where the exported peer lives, keyed by the transformers and torch versions."""
    from importlib import metadata

    tf = metadata.version("transformers")
    torch_v = metadata.version("torch").split("+")[0]
    return cache / f"wav2vec2-base-random-{n_labels}cls-tf{tf}-torch{torch_v}-op{OPSET}.onnx"


def _build_peer(n_labels: int) -> Any:
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2ForSequenceClassification
    from transformers.utils import logging as tf_logging

    tf_logging.set_verbosity_error()
    torch.manual_seed(0)
    config = Wav2Vec2Config()
    config.num_labels = n_labels
    model = Wav2Vec2ForSequenceClassification(config).eval()

    class Peer(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, waveform: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self.inner(waveform).logits, dim=-1)

    return Peer().eval()


def _export(peer: Any, path: Path, window: int, say: Callable[[str], None]) -> float:
    """Export ``peer`` to ``path`` (atomically); returns the seconds it took."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    example = torch.zeros(1, window)
    example[:, ::97] = 0.01
    say(f"peer: exporting wav2vec2-base (random weights) to {path} (once; ~25 s)")
    t0 = time.monotonic()
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")
        torch.onnx.export(peer, (example,), str(tmp), input_names=["waveform"],
                          output_names=["probs"],
                          dynamic_axes={"waveform": {0: "batch", 1: "samples"}},
                          opset_version=OPSET, dynamo=False)
    tmp.replace(path)
    return time.monotonic() - t0


def _session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _onnx_call(sess: Any, x: np.ndarray) -> Callable[[], object]:
    return lambda: sess.run(None, {"waveform": x})


def _torch_call(peer: Any, x: np.ndarray, threads: int) -> Callable[[], object]:
    import torch

    torch.set_num_threads(threads)
    xt = torch.from_numpy(x)

    def call() -> object:
        with torch.inference_mode():
            return peer(xt)

    return call


def _interleaved(peer_call: Callable[[], object], ours_call: Callable[[], object], runs: int,
                 ours_per_peer: int) -> dict[str, list[float]]:
    """Wall and calling-thread CPU milliseconds per call, peer and ours, interleaved."""
    peer_call()
    for _ in range(5):
        ours_call()
    out: dict[str, list[float]] = {"peer": [], "ours": [], "peer_cpu": [], "ours_cpu": []}

    def timed(call: Callable[[], object], key: str) -> None:
        c0 = time.thread_time()
        t0 = time.perf_counter()
        call()
        out[key].append((time.perf_counter() - t0) * 1000.0)
        out[key + "_cpu"].append((time.thread_time() - c0) * 1000.0)

    for _ in range(runs):
        timed(peer_call, "peer")
        for _ in range(ours_per_peer):
            timed(ours_call, "ours")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Child entry point; prints one JSON result line."""
    parser = argparse.ArgumentParser(prog="python -m streamser.bench.peer")
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=default_cache_dir())
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--backend", choices=("onnx", "torch", "auto"), default="onnx")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    args = parser.parse_args(argv)

    def say(line: str) -> None:
        print(f"bench: {line}", file=sys.stderr, flush=True)

    missing = [name for name in ("torch", "transformers") if find_spec(name) is None]
    if missing:
        emit_json({"status": "skipped",
                   "message": f"peer skipped: {' and '.join(missing)} not installed (pip install "
                              "'streamser[bench]' torch==2.13.0 for the wav2vec2 peer)"})
        return 0
    logging.getLogger("transformers").setLevel(logging.ERROR)
    from streamser.model import ModelRunner

    ours_runner = ModelRunner.load(args.model, threads=1, use_gpu=False)
    n_labels = len(ours_runner.spec.labels)
    window = ours_runner.spec.window_samples
    path = peer_onnx_path(args.cache, n_labels)
    sidecar = path.with_suffix(".json")
    backend = args.backend
    if backend == "auto":
        backend = "onnx" if path.is_file() and sidecar.is_file() else "torch"
    result: dict[str, Any] = {
        "status": "ok", "backend": "onnxruntime" if backend == "onnx" else "torch-eager",
        "window_samples": window, "runs": args.runs,
        "config": "transformers.Wav2Vec2Config() defaults + Wav2Vec2ForSequenceClassification "
                  f"({n_labels} labels) + softmax, random weights (seed 0)",
    }
    peer: Any = None
    if backend == "torch" or not (path.is_file() and sidecar.is_file()):
        t0 = time.monotonic()
        peer = _build_peer(n_labels)
        result["build_s"] = round(time.monotonic() - t0, 2)
        params = sum(p.numel() for p in peer.parameters())
        if backend == "onnx":
            result["export_s"] = round(_export(peer, path, window, say), 1)
            sidecar.write_text(json.dumps({"params": params}))
            peer = None
    else:
        params = int(json.loads(sidecar.read_text())["params"])
    result["params_m"] = round(params / 1e6, 2)
    if backend == "onnx":
        result["onnx_path"] = str(path)
        result["onnx_mb"] = round(path.stat().st_size / 1e6, 1)
    rng = np.random.default_rng(1)
    x = (0.05 * rng.standard_normal((1, window))).astype(np.float32)
    for threads in (int(t) for t in args.threads.split(",")):
        ours = ModelRunner.load(args.model, threads=threads, use_gpu=False)
        peer_call = (_onnx_call(_session(path, threads), x) if backend == "onnx"
                     else _torch_call(peer, x, threads))

        def ours_call(ours: ModelRunner = ours) -> object:
            return ours.predict(x)

        times = _interleaved(peer_call, ours_call, args.runs, ours_per_peer=5)
        p, o = percentiles(times["peer"]), percentiles(times["ours"])
        entry: dict[str, Any] = {"peer_ms": p, "ours_ms": o,
                                 "speedup": round(p["p50"] / o["p50"], 1)}
        if threads == 1 and backend == "onnx":  # one ORT thread runs on the calling thread
            pc, oc = percentiles(times["peer_cpu"]), percentiles(times["ours_cpu"])
            entry.update(peer_cpu_ms=pc, ours_cpu_ms=oc,
                         speedup_cpu=round(pc["p50"] / oc["p50"], 1))
        result[f"threads_{threads}"] = entry
        say(f"peer {threads} thread(s): {p['p50']:.1f} ms vs ours {o['p50']:.2f} ms per window "
            f"-> {p['p50'] / o['p50']:.0f}x")
    emit_json(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
