"""How many concurrent real-time streams one process sustains, with windows batched across streams.

Each stream is what the live engine runs per source: a :class:`Conditioner` and an
:class:`Analyzer` (windowing, VAD, model, smoothing, frame building), fed 32 ms blocks of speech.
All streams advance in lock-step on the wall clock, one hop of audio at a time. With batching,
the windows that every stream completes at a hop boundary (the last ``window`` samples of each
stream, kept in one array) go through the model as one onnxruntime batch first; each analyzer's
``predict`` then returns its row (checked against the window it asks for; a mismatch falls back
to a direct call, counted as ``batch_misses``).

A run of N streams is *sustained* when the work for each hop finishes before the next hop's
audio is complete (lag < hop) for 95 % of hops and the last hop — frames do not fall behind.
The search: an unpaced estimate of the cost per stream-hop, then paced runs bisecting around it.
No websocket or capture thread here: this is the analysis budget only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from streamser.bench.inference import demo_audio

__all__ = ["StreamSet", "run_throughput"]

BLOCK = 512  # 32 ms at 16 kHz, as FileSource delivers


class StreamSet:
    """N analysis pipelines that advance one hop at a time (bench thread only)."""

    def __init__(self, model: Path, n: int, batch: int, threads: int, audio: np.ndarray) -> None:
        from streamser.core.analyzer import Analyzer, AnalyzerConfig
        from streamser.core.conditioning import Conditioner
        from streamser.core.contract import Prediction
        from streamser.model import ModelRunner

        self.runner = ModelRunner.load(model, threads=threads, use_gpu=False)
        spec = self.runner.spec
        self.n, self.batch = n, batch
        self.hop_s = min(spec.hop_s, 0.5)
        self.hop = round(self.hop_s * spec.sample_rate)
        self.window = spec.window_samples
        self.audio = audio
        self.offsets = [(i * 12_347) % len(audio) for i in range(n)]
        self.rings = np.zeros((n, self.window), dtype=np.float32)
        self.cached: list[Prediction | None] = [None] * n
        self.batch_misses = 0
        self.frames = 0
        self.samples = 0
        self.conditioners = [Conditioner(spec.sample_rate) for _ in range(n)]

        def predictor(i: int) -> Callable[[np.ndarray], Prediction]:
            def predict(windows: np.ndarray) -> Prediction:
                cached = self.cached[i]
                self.cached[i] = None
                if cached is not None and np.array_equal(windows[0, -64:], self.rings[i, -64:]):
                    return cached
                if self.batch > 1:
                    self.batch_misses += 1
                return self.runner.predict(windows)
            return predict

        self.analyzers = [Analyzer(predictor(i), spec, AnalyzerConfig()) for i in range(n)]

    def _chunk(self, i: int) -> np.ndarray:
        start = (self.offsets[i] + self.samples) % (len(self.audio) - self.hop)
        return self.audio[start : start + self.hop]

    def step(self, arrival: float) -> None:
        """Feed one hop of audio to every stream and make their frames."""
        from streamser.core.conditioning import RawBlock
        from streamser.core.contract import Prediction

        chunks = [self._chunk(i) for i in range(self.n)]
        if self.batch > 1:
            self.rings = np.concatenate([self.rings[:, self.hop :], np.stack(chunks)], axis=1)
            for lo in range(0, self.n, self.batch):
                prediction = self.runner.predict(self.rings[lo : lo + self.batch])
                for j in range(len(prediction.probs)):
                    emb = prediction.embedding
                    self.cached[lo + j] = Prediction(prediction.probs[j : j + 1],
                                                     None if emb is None else emb[j : j + 1])
        for i, chunk in enumerate(chunks):
            analyzer, cond = self.analyzers[i], self.conditioners[i]
            for b in range(0, self.hop, BLOCK):
                raw = RawBlock(self.samples + b, chunk[b : b + BLOCK, np.newaxis], arrival)
                self.frames += len(analyzer.push(cond.process(raw)))
        self.samples += self.hop


def _cost_per_stream_hop(model: Path, batch: int, threads: int,
                         audio: np.ndarray) -> tuple[float, float]:
    """Unpaced seconds of work per stream per hop (8 streams, 4 hops after 1 warm-up); hop_s."""
    streams = StreamSet(model, 8, batch, threads, audio)
    streams.step(time.monotonic())
    t0 = time.perf_counter()
    for _ in range(4):
        streams.step(time.monotonic())
    return (time.perf_counter() - t0) / (4 * 8), streams.hop_s


def _paced(model: Path, n: int, batch: int, threads: int, audio: np.ndarray,
           hops: int) -> dict[str, Any]:
    streams = StreamSet(model, n, batch, threads, audio)
    streams.step(time.monotonic())  # warm-up, unpaced
    lags: list[float] = []
    busy = 0.0
    t0 = time.monotonic()
    for k in range(hops):
        due = t0 + (k + 1) * streams.hop_s  # this hop's audio is complete at `due`
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        start = time.monotonic()
        streams.step(due)
        done = time.monotonic()
        busy += done - start
        lags.append(done - due)
    hop_s = streams.hop_s
    ok = float(np.percentile(lags, 95)) < hop_s and lags[-1] < hop_s
    return {"streams": n, "sustained": ok, "lag_p95_ms": round(float(np.percentile(lags, 95))
                                                                * 1000, 1),
            "lag_max_ms": round(max(lags) * 1000, 1), "duty": round(busy / (hops * hop_s), 3),
            "batch_misses": streams.batch_misses, "frames": streams.frames}


def _search(model: Path, batch: int, threads: int, audio: np.ndarray, hops: int, quick: bool,
            say: Callable[[str], None]) -> dict[str, Any]:
    cost, hop_s = _cost_per_stream_hop(model, batch, threads, audio)
    estimate = max(1, int(hop_s / cost))
    trials: list[dict[str, Any]] = []

    def trial(n: int) -> bool:
        r = _paced(model, n, batch, threads, audio, hops)
        trials.append(r)
        say(f"  {n} streams (batch {batch}, {threads} thread): "
            f"{'sustained' if r['sustained'] else 'falls behind'}, lag p95 {r['lag_p95_ms']} ms, "
            f"duty {r['duty']:.2f}")
        return bool(r["sustained"])

    lo, hi = 0, None
    first = max(1, int(estimate * 0.85))
    if trial(first):
        lo = first
        step = max(1, int(estimate * 0.15))
        n = first + step
        while n <= 4 * estimate + 4:
            if not trial(n):
                hi = n
                break
            lo, n = n, n + step
    else:
        hi = first
        n = first // 2
        while n >= 1:  # a load spike or an overestimate: halve until a count keeps up
            if trial(n):
                lo = n
                break
            hi, n = n, n // 2
    if not quick and hi is not None:
        while hi - lo > max(1, lo // 20):
            mid = (lo + hi) // 2
            if trial(mid):
                lo = mid
            else:
                hi = mid
    return {"batch": batch, "threads": threads, "cost_ms_per_stream_hop": round(cost * 1000, 3),
            "hop_s": hop_s, "estimate": estimate, "max_streams": lo, "first_failing": hi,
            "streams_per_core": round(lo / threads, 1), "trials": trials}


def run_throughput(model: Path, quick: bool, say: Callable[[str], None]) -> dict[str, Any]:
    """Streams sustained per process, unbatched and batched; the best per core is the figure."""
    audio = demo_audio(60.0)
    hops = 4 if quick else 10
    configs = [(16, 1)] if quick else [(1, 1), (16, 1), (16, 2)]
    runs = []
    for batch, threads in configs:
        say(f"throughput: batch {batch}, {threads} onnxruntime thread(s), {hops} hops per trial")
        runs.append(_search(model, batch, threads, audio, hops, quick, say))
    best = max(runs, key=lambda r: r["streams_per_core"])
    return {"hop_s": best["hop_s"], "hops_per_trial": hops, "block_samples": BLOCK, "runs": runs,
            "streams_per_core": best["streams_per_core"], "best": {
                "batch": best["batch"], "threads": best["threads"],
                "max_streams": best["max_streams"]}}
