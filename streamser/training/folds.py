"""Speaker-independent folds: no speaker is ever in both the training and the test side.

- :func:`speaker_folds` — k folds over the speakers of any utterance list (seeded, balanced by
  utterance count).
- :func:`ravdess_folds` — the fixed RAVDESS protocol: 5 folds of 4 actors (01-04, 05-08, ...,
  17-20). Utterances of other corpora (e.g. TESS added as extra training data) always fall on the
  training side.
- :func:`check_speaker_independent` — raises :class:`SpeakerLeakError` if a speaker is on both
  sides; :meth:`Fold.split` calls it every time.

RAVDESS actors 19 and 20 are the demo voices of the shipped model (:data:`DEMO_SPEAKERS`): the
cross-validation uses all of 01-20, the final model's training must exclude them.
Pure functions; safe from any thread.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from streamser.training.corpora import Utterance

__all__ = [
    "DEMO_SPEAKERS",
    "RAVDESS_CV_ACTORS",
    "Fold",
    "SpeakerLeakError",
    "check_speaker_independent",
    "ravdess_folds",
    "speaker_folds",
]

#: RAVDESS actors whose clips are the bundled demo audio: never train the shipped model on them.
DEMO_SPEAKERS: frozenset[str] = frozenset({"ravdess:19", "ravdess:20"})

#: Actors of the 5-fold RAVDESS protocol (21-24 are withheld from this project).
RAVDESS_CV_ACTORS: tuple[str, ...] = tuple(f"ravdess:{actor:02d}" for actor in range(1, 21))


class SpeakerLeakError(ValueError):
    """A speaker appears on both the training and the test side of a split (a protocol bug)."""


@dataclass(frozen=True)
class Fold:
    """One split: utterances of ``test_speakers`` are the test side, all others train.

    ``index`` counts from 0.
    """

    index: int
    test_speakers: frozenset[str]

    def is_test(self, utterance: Utterance) -> bool:
        """Whether ``utterance`` belongs to the test side."""
        return utterance.speaker in self.test_speakers

    def split(
        self, utterances: Sequence[Utterance], exclude: Iterable[str] = ()
    ) -> tuple[list[Utterance], list[Utterance]]:
        """``(train, test)`` lists, in input order; speakers in ``exclude`` go to neither side."""
        excluded = frozenset(exclude)
        train = [u for u in utterances if u.speaker not in excluded and not self.is_test(u)]
        test = [u for u in utterances if u.speaker not in excluded and self.is_test(u)]
        check_speaker_independent(train, test)
        return train, test

    def indices(self, utterances: Sequence[Utterance]) -> tuple[np.ndarray, np.ndarray]:
        """``(train_idx, test_idx)`` int64 index arrays into ``utterances``."""
        is_test = np.array([self.is_test(u) for u in utterances], dtype=bool)
        return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def check_speaker_independent(train: Iterable[Utterance], test: Iterable[Utterance]) -> None:
    """Raise :class:`SpeakerLeakError` naming every speaker found on both sides."""
    shared = {u.speaker for u in train} & {u.speaker for u in test}
    if shared:
        raise SpeakerLeakError(
            f"speaker(s) {', '.join(sorted(shared))} are in both train and test; "
            "speaker-independent evaluation needs disjoint speakers."
        )


def speaker_folds(utterances: Sequence[Utterance], k: int, seed: int = 0) -> list[Fold]:
    """Split the speakers of ``utterances`` into ``k`` disjoint test groups.

    Speakers are shuffled with ``seed`` and each is given to the fold with the fewest utterances
    so far, so folds have near-equal utterance counts (equal speaker counts when every speaker
    has the same number of clips). Raises ``ValueError`` if ``k < 2`` or ``k`` exceeds the number
    of speakers.
    """
    counts = Counter(u.speaker for u in utterances)
    speakers = sorted(counts)
    if k < 2 or k > len(speakers):
        raise ValueError(
            f"k={k} folds requested for {len(speakers)} speaker(s); need 2 <= k <= speakers."
        )
    order = np.random.default_rng(seed).permutation(len(speakers))
    groups: list[set[str]] = [set() for _ in range(k)]
    load = [0] * k
    for position, i in enumerate(order):
        speaker = speakers[int(i)]
        # First pass fills every fold with one speaker, then balance by utterance count.
        target = position if position < k else min(range(k), key=lambda f: (load[f], f))
        groups[target].add(speaker)
        load[target] += counts[speaker]
    return [Fold(index, frozenset(group)) for index, group in enumerate(groups)]


def ravdess_folds() -> list[Fold]:
    """The fixed RAVDESS protocol: fold i tests actors 4i+1 ... 4i+4 (01-04, ..., 17-20)."""
    return [
        Fold(index, frozenset(RAVDESS_CV_ACTORS[4 * index : 4 * index + 4])) for index in range(5)
    ]
