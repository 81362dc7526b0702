"""Teacher embeddings for distillation: a pretrained speaker encoder, rendered once per clip.

The student (our FaceNet trunk) learns to predict, from an *augmented* 2 s crop, what the
teacher says about the *clean* utterance. The teacher is Resemblyzer's GE2E voice encoder
(trained on thousands of speakers and many recording chains; its weights ship inside the
``resemblyzer`` wheel, nothing is downloaded). It is a training-time dependency only
(``pip install -e '.[train,teacher]' && pip install --no-deps resemblyzer==0.1.4``; without
``--no-deps`` its ``webrtcvad`` requirement replaces the ``webrtcvad-wheels`` module the live VAD
imports): the shipped ONNX never contains it.

Embeddings are rendered once per corpus into ``<cache>/teacher/<teacher>-<corpus>.npz``
(keyed by the clip's path relative to the corpora root), because the teacher costs ~40 ms
per 3 s clip on one core, which would double every training step. Command line::

    python -m streamser.training.teacher render [--corpora ravdess tess nemo ased baved]

Which thread: all functions run on the caller's thread (training scripts, no live audio).
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from streamser.training.audio_io import SAMPLE_RATE, cache_root
from streamser.training.corpora import Utterance, default_corpora_root

__all__ = ["TEACHER", "TEACHER_DIM", "TeacherTable", "render_corpus", "teacher_matrix"]

log = logging.getLogger(__name__)

#: Name of the teacher (part of the cache file name and the training config).
TEACHER = "resemblyzer"
#: Size of the teacher's utterance embedding.
TEACHER_DIM = 256


def _key(path: Path, root: Path | None) -> str:
    try:
        return str(Path(path).resolve().relative_to(root.resolve())) if root else str(path)
    except ValueError:
        return str(Path(path).resolve())


class TeacherTable:
    """Rendered teacher embeddings of one corpus: ``key -> float32 [TEACHER_DIM]``."""

    def __init__(self, keys: Sequence[str], emb: np.ndarray) -> None:
        if emb.shape != (len(keys), TEACHER_DIM):
            raise ValueError(f"teacher table: {len(keys)} keys but embeddings {emb.shape}")
        self.keys = list(keys)
        self.index = {k: i for i, k in enumerate(self.keys)}
        self.emb = emb.astype(np.float32)

    @staticmethod
    def path(corpus: str) -> Path:
        """Cache file of ``corpus``'s table."""
        return cache_root() / "teacher" / f"{TEACHER}-{corpus}.npz"

    @classmethod
    def load(cls, corpus: str) -> TeacherTable | None:
        """The cached table, or ``None`` when it was never rendered."""
        f = cls.path(corpus)
        if not f.exists():
            return None
        with np.load(f) as z:
            return cls([str(k) for k in z["keys"]], z["emb"])

    def save(self, corpus: str) -> Path:
        """Write the table atomically (``.partial`` then rename)."""
        f = self.path(corpus)
        f.parent.mkdir(parents=True, exist_ok=True)
        tmp = f.with_name(f.name + ".partial.npz")
        np.savez(tmp, keys=np.array(self.keys), emb=self.emb)
        os.replace(tmp, f)
        return f


def _encoder():  # resemblyzer is an optional, training-only dependency
    try:
        import torch
        from resemblyzer import VoiceEncoder
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            f"the distillation teacher needs the 'teacher' extra ({exc}); "
            "install it with: pip install -e '.[train,teacher]' && "
            "pip install --no-deps resemblyzer==0.1.4"
        ) from exc
    torch.set_num_threads(1)
    return VoiceEncoder("cpu", verbose=False)


def embed_clips(audio: Sequence[np.ndarray]) -> np.ndarray:
    """Teacher utterance embeddings ``[n, TEACHER_DIM]`` of clean 16 kHz clips.

    Each clip is level-normalised and trimmed of long silences by the teacher's own
    preprocessing; a clip with too little speech left gets the embedding of the raw clip.
    """
    from resemblyzer import preprocess_wav

    enc = _encoder()
    out = np.zeros((len(audio), TEACHER_DIM), dtype=np.float32)
    for i, clip in enumerate(audio):
        wav = preprocess_wav(np.asarray(clip, dtype=np.float32), source_sr=SAMPLE_RATE)
        if len(wav) < SAMPLE_RATE // 2:
            wav = np.asarray(clip, dtype=np.float32)
        out[i] = enc.embed_utterance(wav)
    return out


def render_corpus(corpus: str) -> Path:
    """Render (or reuse) the teacher table of ``corpus``; returns the cache file."""
    from streamser.training.experiments import load_clips

    f = TeacherTable.path(corpus)
    utts, audio = load_clips(corpus)
    root = default_corpora_root()
    keys = [_key(u.path, root) for u in utts]
    old = TeacherTable.load(corpus)
    if old is not None and all(k in old.index for k in keys):
        log.info("teacher %s: %d clips already rendered in %s", corpus, len(keys), f)
        return f
    t0 = time.time()
    emb = embed_clips(audio)
    TeacherTable(keys, emb).save(corpus)
    log.info("teacher %s: %d clips in %.0f s -> %s", corpus, len(keys), time.time() - t0, f)
    return f


def teacher_matrix(utterances: Sequence[Utterance]) -> tuple[np.ndarray, np.ndarray]:
    """``(emb [n, TEACHER_DIM], has [n] bool)`` for ``utterances`` from the rendered tables.

    Clips of corpora never rendered get zeros and ``has = False`` (the distillation loss
    skips them), so a missing table weakens a run but never breaks it.
    """
    root = default_corpora_root()
    tables: dict[str, TeacherTable | None] = {}
    emb = np.zeros((len(utterances), TEACHER_DIM), dtype=np.float32)
    has = np.zeros(len(utterances), dtype=bool)
    for i, u in enumerate(utterances):
        if u.corpus not in tables:
            tables[u.corpus] = TeacherTable.load(u.corpus)
            if tables[u.corpus] is None:
                log.warning("no teacher table for %s: run `python -m "
                            "streamser.training.teacher render --corpora %s`", u.corpus, u.corpus)
        table = tables[u.corpus]
        row = table.index.get(_key(u.path, root)) if table is not None else None
        if row is not None and table is not None:
            emb[i] = table.emb[row]
            has[i] = True
    return emb, has


def probe_loco(c: float = 1.0) -> dict[str, dict[str, float]]:
    """The teacher alone: its utterance embedding + logistic regression, leave-one-corpus-out.

    Same protocol as the network's (:mod:`streamser.training.loco`): train on every labelled
    clip of the other corpora (BAVED has no categories and sits out), test on the held-out
    corpus's clips of the four shared classes. Returns ``{target: {"ua", "wa", "n"}}``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from streamser.training import metrics
    from streamser.training.corpora import load_corpus
    from streamser.training.loco import LOCO_TARGETS, SHARED4

    per = {}
    for corpus in LOCO_TARGETS:
        utts = [u for u in load_corpus(corpus) if u.label in SHARED4]
        emb, has = teacher_matrix(utts)
        per[corpus] = (emb[has], np.array([SHARED4.index(u.label) for u, h in
                                            zip(utts, has, strict=True) if h]))
    out = {}
    for target in LOCO_TARGETS:
        x = np.concatenate([per[c][0] for c in LOCO_TARGETS if c != target])
        y = np.concatenate([per[c][1] for c in LOCO_TARGETS if c != target])
        clf = make_pipeline(StandardScaler(), LogisticRegression(
            C=c, max_iter=2000, class_weight="balanced"))
        clf.fit(x, y)
        pred = clf.predict(per[target][0])
        yt = per[target][1]
        out[target] = {"ua": metrics.unweighted_accuracy(yt, pred, len(SHARED4)),
                       "wa": metrics.weighted_accuracy(yt, pred), "n": len(yt)}
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``render [--corpora ...]`` or ``probe`` (the teacher's own LOCO UA)."""
    p = argparse.ArgumentParser(prog="python -m streamser.training.teacher",
                                description="Render teacher embeddings for distillation.")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("render", help="embed every clip of the corpora with the teacher")
    r.add_argument("--corpora", nargs="+", default=["ravdess", "tess", "nemo", "ased", "baved"])
    q = sub.add_parser("probe", help="teacher embedding + logistic regression, LOCO, 4 classes")
    q.add_argument("--c", type=float, default=1.0, help="inverse regularisation strength")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.cmd == "probe":
        res = probe_loco(args.c)
        for target, m in res.items():
            print(f"{target:8s} UA {m['ua']:.3f} WA {m['wa']:.3f} n {m['n']}")
        print(f"mean UA {np.mean([m['ua'] for m in res.values()]):.3f}")
        return 0
    for corpus in args.corpora:
        render_corpus(corpus)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
