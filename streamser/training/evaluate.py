"""Evaluate an exported ONNX model on a corpus, scoring clips as the live engine does.

Windows are cut by :func:`streamser.training.data.engine_windows` (window and hop from the file's
own metadata); a clip's probabilities are the mean of its windows' probabilities. Labels the model
does not have are skipped; classes the corpus lacks are dropped from UA (UA averages the recall
of the classes present).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from streamser.contract import INPUT_NAME, parse_metadata
from streamser.training import metrics
from streamser.training.data import engine_windows

__all__ = ["evaluate_onnx", "onnx_session", "time_onnx"]


def onnx_session(path: Path | str, threads: int = 1):
    """An onnxruntime CPU session pinned to ``threads`` intra-op threads."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # a speaker-relative model's optional inputs warn at load
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _speaker_ids(corpus: str, speakers: Sequence[str] | None) -> set[str] | None:
    if not speakers:
        return None
    return {s if ":" in s else f"{corpus}:{int(s):02d}" if s.isdigit() else f"{corpus}:{s}"
            for s in speakers}


def evaluate_onnx(
    model: Path | str,
    corpus: str,
    speakers: Sequence[str] | None = None,
    root: Path | str | None = None,
) -> dict:
    """UA, WA and confusion matrix of ``model`` on ``corpus`` (optionally only ``speakers``)."""
    from streamser.training.audio_io import load_many
    from streamser.training.corpora import load_corpus

    sess = onnx_session(model, threads=2)
    spec = parse_metadata(sess.get_modelmeta().custom_metadata_map, str(model))
    wanted = _speaker_ids(corpus, speakers)
    utts = [u for u in load_corpus(corpus, root) if u.label in spec.labels
            and (wanted is None or u.speaker in wanted)]
    if not utts:
        raise ValueError(f"no clips of {corpus} with labels {spec.labels} and speakers {speakers}")
    audio = load_many(utts, progress=False)
    y = np.array([spec.labels.index(u.label) for u in utts])
    probs = np.stack([
        sess.run(None, {INPUT_NAME: engine_windows(a, spec.window_samples, spec.hop_samples)})[0]
        .mean(axis=0) for a in audio])
    pred = probs.argmax(axis=1)
    return {
        "model": str(model), "corpus": corpus, "speakers": sorted({u.speaker for u in utts}),
        "n": len(utts), "labels": list(spec.labels),
        "ua": metrics.unweighted_accuracy(y, pred, len(spec.labels)),
        "wa": metrics.weighted_accuracy(y, pred),
        "ece": metrics.expected_calibration_error(probs, y),
        "confusion": metrics.confusion_matrix(y, pred, len(spec.labels)).tolist(),
    }


def time_onnx(model: Path | str, threads: int = 1, runs: int = 300) -> dict:
    """Latency (ms) of one 2 s window (batch 1) with ``threads`` threads.

    Wall-clock percentiles depend on what else runs on the machine, so the process CPU time per
    window and the 1-minute load average are reported beside them.
    """
    sess = onnx_session(model, threads)
    spec = parse_metadata(sess.get_modelmeta().custom_metadata_map, str(model))
    x = (np.random.default_rng(0).standard_normal((1, spec.window_samples)) * 0.05).astype(
        np.float32)
    for _ in range(20):
        sess.run(None, {INPUT_NAME: x})
    times = []
    cpu0 = time.process_time()
    for _ in range(runs):
        t = time.perf_counter()
        sess.run(None, {INPUT_NAME: x})
        times.append((time.perf_counter() - t) * 1000.0)
    cpu_ms = (time.process_time() - cpu0) * 1000.0 / runs
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return {"threads": threads, "runs": runs, "median_ms": float(np.median(times)),
            "p10_ms": float(np.percentile(times, 10)), "min_ms": float(np.min(times)),
            "p90_ms": float(np.percentile(times, 90)), "cpu_ms_per_window": cpu_ms,
            "load_average_1min": load, "model": str(model)}


if __name__ == "__main__":  # python -m streamser.training.evaluate MODEL  -> timing JSON
    import sys

    print(json.dumps([time_onnx(sys.argv[1], t) for t in (1, 2)], indent=1))
