"""In-memory training data: decoded clips, voiced frames, random crops and engine-like windows.

Every clip is decoded once (float32 mono 16 kHz, via :mod:`streamser.training.audio_io` and its
disk cache) and kept in memory; ~170 min of audio is ~650 MB.

Two ways to cut windows, both of ``window`` samples (the model's ``window_s`` at 16 kHz):

- :meth:`ClipSet.sample_batch` (training): random crops *anchored on speech*: a random voiced
  30 ms frame is placed at a random position inside the crop, so crops may run into zeros before
  or after the clip (as the engine's windows do at stream start) but never hold only silence.
- :func:`engine_windows` (evaluation): the live engine's windows: window k ends at sample
  ``k * hop`` (k = 1, 2, ...) and is left-padded with zeros before the clip start; a clip
  shorter than one hop gets one window ending at its last sample. Windows whose voiced fraction
  is below ``min_voiced`` are dropped (the engine gates on voice activity), unless that would
  drop them all. The utterance score is the mean of the remaining windows' probabilities.

"Voiced" here is an energy rule on 30 ms frames (480 samples): frame RMS above both -60 dBFS and
the clip's loudest frame minus 35 dB. It is level-invariant above the -60 dBFS floor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from streamser.training.augment import speed_crop
from streamser.training.corpora import Utterance

__all__ = ["AROUSAL_OF_LABEL", "FRAME", "ClipSet", "engine_windows", "voiced_frames"]

FRAME = 480  # 30 ms at 16 kHz, as the engine's VAD


def voiced_frames(audio: np.ndarray, rel_db: float = 35.0, floor_dbfs: float = -60.0) -> np.ndarray:
    """Boolean per 30 ms frame (``len(audio) // FRAME`` frames): energy says speech."""
    n = len(audio) // FRAME
    if n == 0:
        return np.ones(1, dtype=bool)
    frames = audio[: n * FRAME].reshape(n, FRAME).astype(np.float64)
    rms_db = 10.0 * np.log10(np.mean(frames * frames, axis=1) + 1e-12)
    return (rms_db > floor_dbfs) & (rms_db > rms_db.max() - rel_db)


def engine_windows(
    audio: np.ndarray, window: int, hop: int, min_voiced: float = 0.25
) -> np.ndarray:
    """``[n_windows, window]`` float32 windows of one clip, cut as the live engine does.

    ``window`` and ``hop`` are in samples. See the module docstring for padding and gating.
    """
    n = len(audio)
    ends = np.arange(hop, n + 1, hop) if n >= hop else np.array([n])
    padded = np.concatenate([np.zeros(window, dtype=np.float32), audio.astype(np.float32)])
    out = np.stack([padded[e : e + window] for e in ends])  # padded index e + window = audio e
    voiced = voiced_frames(audio).astype(np.float64)
    vpad = np.concatenate([np.zeros(window // FRAME), voiced])
    frac = np.array([vpad[e // FRAME : (e + window) // FRAME].mean() for e in ends])
    keep = frac >= min_voiced
    return out[keep] if keep.any() else out


#: Arousal level (0 low, 1 normal, 2 high) implied by a category, for the auxiliary arousal
#: target; disgust is left out (its arousal varies), calm and sad are low.
AROUSAL_OF_LABEL: dict[str, int] = {
    "sad": 0, "calm": 0, "neutral": 1,
    "happy": 2, "angry": 2, "fearful": 2, "surprised": 2,
}


def _corpus_shares(
    corpora: Sequence[str], corpus_weights: dict[str, float] | None
) -> dict[str, float]:
    """Each corpus's share of a batch: ``corpus_weights`` where given, the remainder split
    equally among the corpora not named; all equal when none is named."""
    given = {c: w for c, w in (corpus_weights or {}).items() if c in corpora}
    if not given:
        return {c: 1.0 / len(corpora) for c in corpora}
    rest = [c for c in corpora if c not in given]
    left = max(0.0, 1.0 - sum(given.values()))
    return {**given, **{c: left / len(rest) for c in rest}}

@dataclass
class ClipSet:
    """Decoded clips with integer labels (indices into ``labels``) and their voiced frames.

    ``y`` is ``-1`` for clips without a category (kept only with ``keep_uncategorised``, e.g.
    BAVED's low/high levels); ``arousal`` is 0/1/2, or ``-1`` where unknown. ``codec`` holds an
    optional pre-rendered lossy-codec copy of each clip (same length), used by
    :meth:`sample_batch` with probability ``p_codec``.
    """

    utterances: list[Utterance]
    audio: list[np.ndarray]
    y: np.ndarray
    labels: tuple[str, ...]
    voiced: list[np.ndarray]
    arousal: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    codec: list[np.ndarray | None] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        utterances: Sequence[Utterance],
        audio: Sequence[np.ndarray],
        labels: Sequence[str],
        keep_uncategorised: bool = False,
    ) -> ClipSet:
        """Keep the utterances whose label is in ``labels`` (others are dropped), and with
        ``keep_uncategorised`` also those with no label but an arousal level."""
        index = {label: i for i, label in enumerate(labels)}
        keep = [
            i for i, u in enumerate(utterances)
            if u.label in index or (keep_uncategorised and u.label is None
                                    and u.arousal is not None)
        ]
        utts = [utterances[i] for i in keep]
        clips = [np.asarray(audio[i], dtype=np.float32) for i in keep]
        y = np.array([index.get(u.label, -1) if u.label else -1 for u in utts], dtype=np.int64)
        arousal = np.array(
            [u.arousal if u.arousal is not None else AROUSAL_OF_LABEL.get(u.label or "", -1)
             for u in utts], dtype=np.int64)
        return cls(utts, clips, y, tuple(labels), [np.flatnonzero(voiced_frames(a)) for a in clips],
                   arousal, [None] * len(utts))

    def __len__(self) -> int:
        return len(self.utterances)

    def sampling_weights(
        self, corpus_weights: dict[str, float] | None = None, balance_speakers: bool = False
    ) -> np.ndarray:
        """Per-clip probabilities: classes balanced within each corpus, corpora weighted.

        ``corpus_weights`` maps corpus name to its share of a batch; corpora not named share
        equally whatever weight remains (all equal when ``None``). With ``balance_speakers``
        each speaker also gets an equal share inside each class, so a corpus with a few
        prolific speakers (BAVED) does not become those speakers. Clips without a category
        are balanced by arousal level instead.
        """
        corpora = sorted({u.corpus for u in self.utterances})
        share = _corpus_shares(corpora, corpus_weights)
        corpus = np.array([u.corpus for u in self.utterances])
        speaker = np.array([u.speaker for u in self.utterances])
        cls_key = np.where(self.y >= 0, self.y, 1000 + self.arousal)
        w = np.zeros(len(self), dtype=np.float64)
        for c in corpora:
            in_c = corpus == c
            classes = np.unique(cls_key[in_c])
            for k in classes:
                sel = in_c & (cls_key == k)
                if not balance_speakers:
                    w[sel] = share[c] / len(classes) / sel.sum()
                    continue
                spk = np.unique(speaker[sel])
                for s_id in spk:
                    s_sel = sel & (speaker == s_id)
                    w[s_sel] = share[c] / len(classes) / len(spk) / s_sel.sum()
        return w / w.sum()

    def crop(
        self, i: int, window: int, rng: np.random.Generator, factor: float = 1.0,
        source: np.ndarray | None = None,
    ) -> np.ndarray:
        """A ``window``-sample crop of clip ``i`` holding speech (see module docstring).

        ``source`` replaces the clip's audio (a codec copy of the same length).
        """
        audio = self.audio[i] if source is None else source
        n_src = max(2, round(window * factor))
        voiced = self.voiced[i]
        if len(voiced) == 0 or len(audio) < n_src:
            return speed_crop(audio, window, rng, factor)
        frame = int(voiced[rng.integers(0, len(voiced))])
        anchor = frame * FRAME + FRAME // 2
        start = anchor - int(rng.integers(0, n_src))
        seg = np.zeros(n_src, dtype=np.float32)
        lo, hi = max(0, start), min(len(audio), start + n_src)
        seg[lo - start : hi - start] = audio[lo:hi]
        if n_src == window:
            return seg
        return np.interp(np.linspace(0.0, n_src - 1, window), np.arange(n_src), seg).astype(
            np.float32
        )

    @cached_property
    def _speaker_groups(
        self,
    ) -> tuple[dict[tuple[str, str], np.ndarray], dict[tuple[str, str], np.ndarray]]:
        """Clip indices per ``(corpus, speaker)``: all of them, and the neutral ones."""
        groups: dict[tuple[str, str], list[int]] = {}
        for i, u in enumerate(self.utterances):
            groups.setdefault((u.corpus, u.speaker), []).append(i)
        every = {key: np.array(v) for key, v in groups.items()}
        neutral = {key: v[[self.utterances[i].label == "neutral" for i in v]]
                   for key, v in every.items()}
        return every, neutral

    def reference_indices(
        self, idx: np.ndarray, k: int, rng: np.random.Generator, p_neutral: float = 0.5
    ) -> np.ndarray:
        """``[len(idx), k]`` clips of the same speaker as each clip of ``idx``, another clip
        where the speaker has one: the voice's reference (an enrolment, a session so far).

        With probability ``p_neutral`` a row's references are the speaker's neutral clips (as a
        neutral enrolment gives), otherwise any of the speaker's clips (as a session does).
        """
        by_speaker, neutral = self._speaker_groups
        out = np.empty((len(idx), k), dtype=np.int64)
        for row, i in enumerate(idx):
            u = self.utterances[int(i)]
            key = (u.corpus, u.speaker)
            pool = neutral[key] if rng.random() < p_neutral else by_speaker[key]
            others = pool[pool != i]
            if len(others) == 0:
                others = by_speaker[key][by_speaker[key] != i]
            if len(others) == 0:
                others = np.array([int(i)])
            out[row] = rng.choice(others, size=k)
        return out

    def draw(self, size: int, rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
        """Indices of ``size`` clips drawn (with replacement) with probabilities ``weights``."""
        return rng.choice(len(self), size=size, p=weights)

    def draw_speakers(
        self, n_speakers: int, per_speaker: int, rng: np.random.Generator,
        corpus_weights: dict[str, float] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """A batch for speaker-identity metric learning: ``n_speakers`` distinct speakers,
        ``per_speaker`` clips of each (with replacement, any label or none).

        A speaker's chance is its corpus's share (``corpus_weights``, as in
        :meth:`sampling_weights`) divided among the corpus's speakers, so a corpus of two
        voices (TESS) is not drawn in every batch. Returns ``(clip indices, speaker ids)``,
        ``[n_speakers * per_speaker]`` each; ids are positions in :attr:`speakers`.
        """
        groups = self.speakers
        n_speakers = min(n_speakers, len(groups))
        corpora = sorted({c for c, _ in groups})
        share = _corpus_shares(corpora, corpus_weights)
        per_corpus = {c: sum(1 for k, _ in groups if k == c) for c in corpora}
        w = np.array([share[c] / per_corpus[c] for c, _ in groups]) + 1e-12
        chosen = rng.choice(len(groups), size=n_speakers, replace=False, p=w / w.sum())
        by_speaker = self._speaker_groups[0]
        idx = np.concatenate([rng.choice(by_speaker[groups[s]], size=per_speaker)
                              for s in chosen])
        return idx, np.repeat(chosen, per_speaker)

    @cached_property
    def speakers(self) -> list[tuple[str, str]]:
        """Every ``(corpus, speaker)`` of the set, sorted: the ids of :meth:`draw_speakers`."""
        return sorted(self._speaker_groups[0])

    def batch_at(
        self,
        idx: np.ndarray,
        window: int,
        rng: np.random.Generator,
        speed: tuple[float, float] = (1.0, 1.0),
        p_speed: float = 0.0,
        p_codec: float = 0.0,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(waveforms [len(idx), window] float32, labels, arousal)`` (int64) for clips
        ``idx``; a clip's codec copy stands in with probability ``p_codec``."""
        size = len(idx)
        out = np.empty((size, window), dtype=np.float32)
        for row, i in enumerate(idx):
            factor = float(rng.uniform(*speed)) if rng.random() < p_speed else 1.0
            copy = self.codec[i] if self.codec and rng.random() < p_codec else None
            out[row] = self.crop(int(i), window, rng, factor, copy)
        arousal = self.arousal[idx] if len(self.arousal) else np.full(size, -1, dtype=np.int64)
        return out, self.y[idx], arousal

    def sample_batch(
        self,
        size: int,
        window: int,
        rng: np.random.Generator,
        weights: np.ndarray,
        speed: tuple[float, float] = (1.0, 1.0),
        p_speed: float = 0.0,
        p_codec: float = 0.0,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`draw` then :meth:`batch_at`."""
        return self.batch_at(self.draw(size, rng, weights), window, rng, speed, p_speed, p_codec)
