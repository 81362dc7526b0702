"""Model latency per window, batching, real-time factor, and the whole analysis per frame.

Runs in the bench process (main thread). Windows are real speech from the bundled demo audio,
at the model's own window length; each thread count gets its own session, warmed up first.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from streamser.bench._proc import percentiles
from streamser.core.frames import SAMPLE_RATE
from streamser.resources import demo_audio_path

__all__ = ["demo_audio", "demo_path", "run_inference", "time_calls"]

def demo_path(folder: Path) -> Path:
    """The bundled demo file, or (without it) a synthetic one in ``folder``."""
    demo = demo_audio_path()
    if demo is not None:
        return demo
    import soundfile as sf

    path = folder / "bench-speech.wav"
    if not path.is_file():
        sf.write(str(path), demo_audio(30.0), SAMPLE_RATE, subtype="PCM_16")
    return path


def demo_audio(seconds: float | None = None, rate: int = SAMPLE_RATE) -> np.ndarray:
    """The bundled demo speech as float32 mono at ``rate`` (looped to ``seconds`` if longer).

    Falls back to a synthetic harmonic "voice" when the demo audio is missing.
    """
    demo = demo_audio_path()
    if demo is not None:
        import soundfile as sf

        data, sr = sf.read(str(demo), dtype="float32", always_2d=True)
        audio = data.mean(axis=1).astype(np.float32)
        if sr != rate:
            import soxr

            audio = soxr.resample(audio, sr, rate).astype(np.float32)
    else:
        t = np.arange(int((seconds or 10.0) * rate)) / rate
        phase = 2 * np.pi * np.cumsum(150 + 40 * np.sin(2 * np.pi * 0.7 * t)) / rate
        voice = sum(np.sin(k * phase) / k for k in range(1, 8))
        audio = (0.2 * voice * np.clip(np.sin(2 * np.pi * 4 * t), 0, None)).astype(np.float32)
    if seconds is not None:
        want = int(seconds * rate)
        reps = -(-want // len(audio))
        audio = np.tile(audio, reps)[:want]
    return audio


def time_calls(fn: Any, arg: Any, runs: int, warmup: int,
               cpu: list[float] | None = None) -> list[float]:
    """Call ``fn(arg)`` ``warmup`` times, then time ``runs`` calls; wall milliseconds each.

    With ``cpu`` given, also appends this thread's CPU milliseconds per call to it: with one
    onnxruntime thread the model runs on the calling thread, so that is the work itself, not
    counting time the OS gave to other processes.
    """
    for _ in range(warmup):
        fn(arg)
    out = []
    for _ in range(runs):
        c0 = time.thread_time()
        t0 = time.perf_counter()
        fn(arg)
        out.append((time.perf_counter() - t0) * 1000.0)
        if cpu is not None:
            cpu.append((time.thread_time() - c0) * 1000.0)
    return out


def _windows(audio: np.ndarray, window: int, count: int) -> np.ndarray:
    starts = np.linspace(0, len(audio) - window, count).astype(int)
    return np.stack([audio[s : s + window] for s in starts]).astype(np.float32)


def run_inference(model: Path, quick: bool, say: Any) -> dict[str, Any]:
    """Latency per window at 1 and 2 threads, batch costs, RTF, and analysis cost per frame."""
    from streamser.core.analyzer import Analyzer, AnalyzerConfig
    from streamser.core.frames import AudioBlock
    from streamser.model import ModelRunner

    runs = 40 if quick else 300
    audio = demo_audio()
    result: dict[str, Any] = {"runs": runs}
    spec = None
    for threads in (1, 2):
        runner = ModelRunner.load(model, threads=threads, use_gpu=False)
        spec = runner.spec
        windows = _windows(audio, spec.window_samples, 16)
        ring = iter(np.tile(np.arange(len(windows)), runs * 2 + 40))

        def one(_: None, runner: ModelRunner = runner, windows: np.ndarray = windows,
                ring: Any = ring) -> None:
            runner.predict(windows[next(ring)][np.newaxis, :])

        cpu: list[float] = []
        ms = time_calls(one, None, runs, warmup=10, cpu=cpu)
        result[f"threads_{threads}"] = percentiles(ms)
        if threads == 1:
            result["threads_1_cpu"] = percentiles(cpu)
        say(f"inference {threads} thread(s): median {np.median(ms):.2f} ms, "
            f"p95 {np.percentile(ms, 95):.2f} ms per {spec.window_s:g} s window"
            + (f" (CPU time median {np.median(cpu):.2f} ms)" if threads == 1 else ""))
        batches = {}
        for batch in (4, 8, 16):
            xb = windows[:batch]
            bms = time_calls(runner.predict, xb, max(3, runs // 10), warmup=2)
            batches[str(batch)] = round(float(np.median(bms)) / batch, 4)
        result[f"batch_ms_per_window_{threads}t"] = batches
    assert spec is not None
    hop_s = min(spec.hop_s, 0.5)  # the live default (AnalyzerConfig.hop_s None)
    median_1t = result["threads_1"]["p50"]
    result.update(
        window_s=spec.window_s, hop_s=hop_s,
        rtf_1t=round(median_1t / (hop_s * 1000.0), 5),
        realtime_x_1t=round(hop_s * 1000.0 / median_1t, 1),
    )
    # the whole analysis (VAD, model, smoothing, frame building), unpaced, one thread
    runner = ModelRunner.load(model, threads=1, use_gpu=False)
    seconds = 20.0 if quick else 60.0
    speech = demo_audio(seconds)
    analyzer = Analyzer(runner.predict, runner.spec, AnalyzerConfig())
    block = 512
    t0 = time.perf_counter()
    frames = 0
    for start in range(0, len(speech), block):
        frames += len(analyzer.push(AudioBlock(start, speech[start : start + block], 0.0)))
    elapsed = time.perf_counter() - t0
    result.update(
        analysis_frames=frames,
        analysis_ms_per_frame=round(elapsed * 1000.0 / max(1, frames), 3),
        analysis_rtf=round(elapsed / seconds, 5),
    )
    say(f"whole analysis: {result['analysis_ms_per_frame']:.2f} ms per frame "
        f"(VAD + model + smoothing), {frames} frames over {seconds:g} s of audio")
    return result
