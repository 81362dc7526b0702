"""Clips and cached window embeddings for the calibration measurement (no torch).

The measurement in :mod:`streamser.training.calib_eval` needs, for every clip of a speaker who
has several emotions, what the live engine would see: the 2 s windows at the 0.5 s hop (the real
:class:`streamser.analyzer.Analyzer`, so zero padding and the WebRTC voice gate are the
engine's), each window's embedding and probabilities, and how many seconds of speech the clip
holds (first to last voiced 30 ms frame). Computing that costs one model call per window, so it is
cached per model file, analysis code (sha256) and corpus under ``$STREAMSER_CALIB_CACHE`` (default
``/tmp/streamser-calib-cache``).

Corpora (``$STREAMSER_CORPORA``, default ``../shared/corpora``): RAVDESS (sentence = statement),
nEMO (sentence = its transcript, the same 90 texts in every emotion) and ASED (sentence = ``yy``;
01-02 are spoken in all five emotions, 03-07 are one emotion's texts).
"""

from __future__ import annotations

import csv
import hashlib
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "Clip",
    "ClipFeatures",
    "corpora_root",
    "extract",
    "scan",
]

_RAVDESS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry",
            "06": "fearful", "07": "disgust", "08": "surprised"}
_NEMO = {"anger": "angry", "fear": "fearful", "happiness": "happy", "neutral": "neutral",
         "sadness": "sad", "surprised": "surprised"}
_ASED = {"n": "neutral", "f": "fearful", "h": "happy", "s": "sad", "a": "angry"}
_ASED_RE = re.compile(r"^([a-z])(\d)-(\d{2})-(\d{2})-(\d{2})-(\d{2})$", re.IGNORECASE)


@dataclass(frozen=True)
class Clip:
    """One labelled utterance: ``speaker`` is corpus-qualified (``nemo:EB0``)."""

    corpus: str
    speaker: str
    label: str
    sentence: str
    path: Path


@dataclass(frozen=True, eq=False)
class ClipFeatures:
    """What the engine saw of one clip: per window ``embedding`` [n, D], ``probs`` [n, C],
    ``voiced`` [n]; ``speech_s`` = seconds from the first to the last voiced 30 ms frame."""

    embedding: np.ndarray
    probs: np.ndarray
    voiced: np.ndarray
    speech_s: float


def corpora_root() -> Path:
    """``$STREAMSER_CORPORA`` or ``../shared/corpora`` beside the checkout."""
    import os

    env = os.environ.get("STREAMSER_CORPORA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "corpora"


def _ravdess(root: Path) -> Iterable[Clip]:
    for path in sorted((root / "ravdess").glob("Actor_*/*.flac")):
        parts = path.stem.split("-")
        if len(parts) == 7 and parts[0] == "03":
            yield Clip("ravdess", f"ravdess:{parts[6]}", _RAVDESS[parts[2]], parts[4], path)


def _nemo(root: Path) -> Iterable[Clip]:
    folder = root / "nemo"
    with open(folder / "data.tsv", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            stem = Path(row["file_id"]).stem
            label = _NEMO.get(row["emotion"].strip())
            path = folder / "samples" / f"{stem}.opus"
            if label is not None and path.is_file():
                speaker = row["speaker_id"].strip().upper()
                yield Clip("nemo", f"nemo:{speaker}", label, row["normalized_text"].strip(), path)


def _ased(root: Path) -> Iterable[Clip]:
    for path in sorted((root / "ased").glob("*/*.opus")):
        m = _ASED_RE.match(path.stem)
        if m is not None:
            letter, _n, sentence, _rep, _gender, speaker = m.groups()
            yield Clip("ased", f"ased:{speaker}", _ASED[letter.lower()], sentence, path)


_SCANNERS = {"ravdess": _ravdess, "nemo": _nemo, "ased": _ased}


def scan(corpus: str, speakers: Sequence[str] = (), root: Path | None = None) -> list[Clip]:
    """The clips of ``corpus`` (ravdess, nemo, ased), optionally only ``speakers`` (bare ids
    such as ``19`` or ``EB0``). Raises FileNotFoundError when the corpus folder is missing."""
    root = root or corpora_root()
    if corpus not in _SCANNERS:
        raise ValueError(f"unknown corpus {corpus!r}; known: {', '.join(_SCANNERS)}")
    if not (root / corpus).is_dir():
        raise FileNotFoundError(f"{root / corpus} not found; set STREAMSER_CORPORA")
    wanted = {f"{corpus}:{s}".upper() for s in speakers}
    return [c for c in _SCANNERS[corpus](root) if not wanted or c.speaker.upper() in wanted]


def _model_key(model: Path) -> str:
    """The model file's and the analysis code's fingerprint: a change to either (a new voice
    detector, another window rule) makes a new cache."""
    import streamser.core as core

    digest = hashlib.sha256()
    with open(model, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    folder = Path(core.__file__).parent
    for name in ("analyzer.py", "vad.py", "windowing.py", "inputguard.py"):
        digest.update((folder / name).read_bytes())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()[:16]


def _speech_seconds(samples: np.ndarray) -> float:
    """First to last voiced 30 ms frame, by the engine's VAD (seconds)."""
    from streamser.core.vad import FRAME_SAMPLES, VoiceActivity

    vad = VoiceActivity()
    vad.push(samples)
    n = vad.frames_decided
    voiced = [vad.voiced_fraction(i * FRAME_SAMPLES, (i + 1) * FRAME_SAMPLES) > 0 for i in range(n)]
    idx = np.flatnonzero(voiced)
    return 0.0 if not len(idx) else (idx[-1] - idx[0] + 1) * FRAME_SAMPLES / 16_000


def _features(samples: np.ndarray, runner: object) -> ClipFeatures:
    from streamser.core.analyzer import Analyzer, AnalyzerConfig
    from streamser.core.contract import Prediction
    from streamser.core.frames import AudioBlock
    from streamser.model import ModelRunner

    assert isinstance(runner, ModelRunner)
    embeddings: list[np.ndarray] = []

    def predict(batch: np.ndarray) -> Prediction:
        out = runner.predict(batch)
        if out.embedding is None:
            raise SystemExit(f"{runner.path} has no 'embedding' output; calibration needs it")
        embeddings.append(out.embedding[0])
        return out

    analyzer = Analyzer(predict, runner.spec, AnalyzerConfig(smoothing_s=0.0))
    frames = analyzer.push(AudioBlock(0, samples, 0.0)) + analyzer.flush()
    return ClipFeatures(
        embedding=np.asarray(embeddings, dtype=np.float32),
        probs=np.asarray([f.probs for f in frames], dtype=np.float32),
        voiced=np.asarray([f.voiced for f in frames], dtype=np.bool_),
        speech_s=_speech_seconds(samples),
    )


def _cache_dir() -> Path:
    import os

    return Path(os.environ.get("STREAMSER_CALIB_CACHE", "/tmp/streamser-calib-cache"))


def extract(model: Path, clips: Sequence[Clip], threads: int = 1,
            progress: bool = True) -> dict[Path, ClipFeatures]:
    """Window features of ``clips`` under ``model``; computed once per model file and corpus
    (cached as npz), so re-runs with other methods cost nothing."""
    import soundfile as sf

    from streamser.model import ModelRunner

    folder = _cache_dir() / _model_key(model)
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[Path, ClipFeatures] = {}
    runner: ModelRunner | None = None
    for corpus in sorted({c.corpus for c in clips}):
        mine = [c for c in clips if c.corpus == corpus]
        cache = folder / f"{corpus}.npz"
        stored = _load(cache)
        missing = [c for c in mine if str(c.path) not in stored]
        for i, clip in enumerate(missing):
            if runner is None:
                runner = ModelRunner.load(model, threads=threads, use_gpu=False)
            data, rate = sf.read(str(clip.path), dtype="float32", always_2d=True)
            if rate != 16_000:
                raise SystemExit(f"{clip.path}: {rate} Hz; the corpora copies are 16 kHz")
            samples = np.clip(data.mean(axis=1), -1.0, 1.0).astype(np.float32)
            stored[str(clip.path)] = _features(samples, runner)
            if progress and (i + 1) % 200 == 0:
                print(f"  {corpus}: {i + 1}/{len(missing)} clips embedded", file=sys.stderr)
            if (i + 1) % 1000 == 0:
                _save(cache, stored)
        if missing:
            _save(cache, stored)
        out.update({c.path: stored[str(c.path)] for c in mine})
    return out


def _save(path: Path, stored: dict[str, ClipFeatures]) -> None:
    keys = sorted(stored)
    counts = np.array([len(stored[k].voiced) for k in keys], dtype=np.int64)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(
        tmp,
        keys=np.array(keys),
        counts=counts,
        embedding=np.concatenate([stored[k].embedding for k in keys]),
        probs=np.concatenate([stored[k].probs for k in keys]),
        voiced=np.concatenate([stored[k].voiced for k in keys]),
        speech_s=np.array([stored[k].speech_s for k in keys]),
    )
    tmp.replace(path)


def _load(path: Path) -> dict[str, ClipFeatures]:
    if not path.is_file():
        return {}
    with np.load(path) as z:
        ends = np.cumsum(z["counts"])
        starts = ends - z["counts"]
        emb, probs, voiced = z["embedding"], z["probs"], z["voiced"]
        return {
            str(k): ClipFeatures(emb[a:b], probs[a:b], voiced[a:b], float(s))
            for k, a, b, s in zip(z["keys"], starts, ends, z["speech_s"], strict=True)
        }
