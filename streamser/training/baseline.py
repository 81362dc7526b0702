"""Classic baseline: openSMILE eGeMAPS v02 functionals + RBF SVM, on the model's own folds.

Protocol (the same as the neural model's report):

- **RAVDESS 5-fold** speaker-independent CV (:func:`~streamser.training.folds.ravdess_folds`,
  actors 01-04, ..., 17-20 tested in turn; train on the other 16), 8 classes, with and without
  TESS added to every training side.
- **Features**: 88 eGeMAPS v02 functionals per utterance (openSMILE, 16 kHz mono input from
  :func:`~streamser.training.audio_io.load_audio`), either *plain* or *speaker-normalised*:
  z-normalised with the mean and standard deviation of that speaker's own utterances (all of
  them, without labels: what a live session accumulates over time). Caveat: RAVDESS speakers
  have an emotion-balanced set of clips, so these statistics are kinder than those of a real
  user who is mostly neutral. A third variant, *speaker_norm_neutral*, takes the statistics from
  the speaker's neutral and calm clips only, as a short neutral enrolment would.
- **Classifier**: StandardScaler -> SVC(kernel="rbf", gamma="scale", class_weight="balanced").
  C is chosen per outer fold from :data:`C_GRID` by an inner 4-fold speaker-independent CV over
  the training RAVDESS actors (extra corpora stay on the inner training side), maximising UA.
- **Cross-corpus**: RAVDESS 01-20 -> TESS and TESS -> RAVDESS 01-20 on the 7 shared classes
  (no calm), C fixed at :data:`CROSS_CORPUS_C`.

Features are cached in one ``.npz`` under ``$STREAMSER_CACHE/features`` keyed by path, mtime and
size (extraction of ~4000 files takes minutes on one core; reruns take seconds).

CLI::

    python -m streamser.training.baseline --out docs/model/baseline.json

writes the JSON report and confusion-matrix PNGs next to it.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamser.errors import ConfigError, StreamserError
from streamser.labels import CANONICAL_LABELS
from streamser.training.audio_io import SAMPLE_RATE, cache_root, load_audio
from streamser.training.corpora import Utterance, default_corpora_root, scan_corpus
from streamser.training.folds import Fold, check_speaker_independent, ravdess_folds, speaker_folds
from streamser.training.metrics import (
    confusion_matrix,
    save_confusion_png,
    summarise,
    unweighted_accuracy,
    weighted_accuracy,
)

__all__ = [
    "CROSS_CORPUS_C",
    "C_GRID",
    "FEATURE_SET",
    "FeatureCache",
    "FoldResult",
    "evaluate_folds",
    "extract_features",
    "main",
    "speaker_normalise",
    "train_test",
]

log = logging.getLogger(__name__)

#: Candidate SVM C values searched by the inner speaker-independent CV.
C_GRID: tuple[float, ...] = (0.3, 1.0, 3.0, 10.0, 30.0)
#: C used for the cross-corpus runs (no target-speaker data to tune on).
CROSS_CORPUS_C = 3.0
#: Cache-file tag of the feature set.
FEATURE_SET = "egemapsv02_functionals"
#: Inner folds for C selection.
INNER_K = 4


# --------------------------------------------------------------------------- features


class FeatureCache:
    """eGeMAPS vectors keyed by ``resolved path|mtime_ns|size`` in one ``.npz`` file."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or cache_root() / "features" / f"{FEATURE_SET}.npz"
        self._rows: dict[str, np.ndarray] = {}
        if self.path.is_file():
            with np.load(self.path, allow_pickle=False) as data:
                for key, row in zip(data["keys"].tolist(), data["features"], strict=True):
                    self._rows[str(key)] = row

    @staticmethod
    def key(path: Path) -> str:
        """Cache key of an audio file: resolved path, modification time (ns) and size (bytes)."""
        st = path.stat()
        return f"{path.resolve()}|{st.st_mtime_ns}|{st.st_size}"

    def get(self, key: str) -> np.ndarray | None:
        """The cached feature vector, or ``None``."""
        return self._rows.get(key)

    def put(self, key: str, row: np.ndarray) -> None:
        """Remember one feature vector (call :meth:`save` to persist)."""
        self._rows[key] = np.asarray(row, dtype=np.float32)

    def save(self) -> None:
        """Write all vectors atomically."""
        if not self._rows:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp.npz")
        keys = np.array(list(self._rows), dtype=str)
        np.savez(tmp, keys=keys, features=np.stack(list(self._rows.values())))
        tmp.replace(self.path)


def _smile():
    import opensmile

    return opensmile.Smile(
        feature_set=opensmile.FeatureSet.eGeMAPSv02,
        feature_level=opensmile.FeatureLevel.Functionals,
    )


def extract_features(
    utterances: Sequence[Utterance],
    cache: FeatureCache | None = None,
    workers: int = 1,
    progress: bool = True,
    save_every: int = 250,
) -> tuple[np.ndarray, list[str]]:
    """eGeMAPS functionals ``[n, 88]`` (float32) for ``utterances`` and the feature names.

    Audio is decoded to 16 kHz mono with :func:`load_audio` (no audio cache: FLAC decoding is
    cheap). Missing vectors are computed with ``workers`` threads, each owning one openSMILE
    instance, and the cache is saved every ``save_every`` new files so an interrupted run resumes.
    """
    from tqdm.auto import tqdm

    cache = cache or FeatureCache()
    keys = [FeatureCache.key(u.path) for u in utterances]
    todo = [i for i, key in enumerate(keys) if cache.get(key) is None]
    names: list[str] = list(_smile().feature_names)
    if todo:
        log.info("extracting eGeMAPS for %d of %d files", len(todo), len(keys))
        smiles = [_smile() for _ in range(max(1, workers))]

        def one(job: tuple[int, int]) -> tuple[int, np.ndarray]:
            slot, i = job
            audio = load_audio(utterances[i].path, cache=False)
            frame = smiles[slot].process_signal(audio, SAMPLE_RATE)
            return i, frame.to_numpy(dtype=np.float32)[0]

        jobs = [(n % len(smiles), i) for n, i in enumerate(todo)]
        done = 0
        with (
            ThreadPoolExecutor(max_workers=len(smiles), thread_name_prefix="smile") as pool,
            tqdm(total=len(todo), desc="eGeMAPS", unit="file", disable=not progress) as bar,
        ):
            # One slot per thread: map chunks of len(smiles) jobs so no instance is shared.
            for start in range(0, len(jobs), len(smiles)):
                for i, row in pool.map(one, jobs[start : start + len(smiles)]):
                    cache.put(keys[i], row)
                    done += 1
                    bar.update(1)
                    if done % save_every == 0:
                        cache.save()
        cache.save()
    rows = [cache.get(key) for key in keys]
    features = np.stack([row for row in rows if row is not None]).astype(np.float32)
    return np.nan_to_num(features), names


def speaker_normalise(
    features: np.ndarray, speakers: Sequence[str], reference: np.ndarray | None = None
) -> np.ndarray:
    """Z-normalise each speaker's rows with that speaker's own mean and std (float64 out).

    ``reference`` (bool per row) restricts the statistics to those rows, e.g. a speaker's neutral
    clips as an enrolment would record them; by default all of the speaker's rows are used.
    Dimensions with (near) zero spread for a speaker are only centred.
    """
    x = np.asarray(features, dtype=np.float64)
    out = np.empty_like(x)
    spk = np.asarray(speakers)
    ref = np.ones(len(spk), dtype=bool) if reference is None else np.asarray(reference, dtype=bool)
    for speaker in np.unique(spk):
        rows = spk == speaker
        stats_rows = rows & ref
        if not stats_rows.any():
            raise ValueError(f"speaker {speaker!r} has no reference rows for normalisation")
        mean = x[stats_rows].mean(axis=0)
        std = x[stats_rows].std(axis=0)
        out[rows] = (x[rows] - mean) / np.where(std > 1e-8, std, 1.0)
    return out


# --------------------------------------------------------------------------- classifier


def _fit_predict(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, c: float
) -> np.ndarray:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    model = make_pipeline(
        StandardScaler(), SVC(kernel="rbf", C=c, gamma="scale", class_weight="balanced")
    )
    model.fit(x_train, y_train)
    return np.asarray(model.predict(x_test), dtype=np.int64)


def _select_c(
    x: np.ndarray,
    y: np.ndarray,
    utterances: Sequence[Utterance],
    tune_corpus: str,
    c_grid: Sequence[float],
    seed: int,
) -> tuple[float, dict[str, float]]:
    """C maximising mean inner UA; inner folds rotate speakers of ``tune_corpus`` only."""
    if len(c_grid) == 1:
        return float(c_grid[0]), {}
    tunable = [u for u in utterances if u.corpus == tune_corpus]
    inner = speaker_folds(tunable, k=INNER_K, seed=seed)
    scores: dict[str, float] = {}
    for c in c_grid:
        uas = []
        for fold in inner:
            tr, te = fold.indices(utterances)
            uas.append(unweighted_accuracy(y[te], _fit_predict(x[tr], y[tr], x[te], c)))
        scores[str(c)] = float(np.mean(uas))
    best = max(c_grid, key=lambda c: (scores[str(c)], -c))
    return float(best), scores


@dataclass(frozen=True)
class FoldResult:
    """Outcome of one outer fold: UA/WA in [0, 1], chosen C, confusion matrix (rows true)."""

    fold: int
    test_speakers: tuple[str, ...]
    n_train: int
    n_test: int
    c: float
    ua: float
    wa: float
    confusion: np.ndarray
    inner_scores: dict[str, float]

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly summary (confusion as nested lists)."""
        return {
            "fold": self.fold,
            "test_speakers": list(self.test_speakers),
            "n_train": self.n_train,
            "n_test": self.n_test,
            "C": self.c,
            "inner_ua_by_C": self.inner_scores,
            "ua": self.ua,
            "wa": self.wa,
            "confusion": self.confusion.tolist(),
        }


def evaluate_folds(
    features: np.ndarray,
    utterances: Sequence[Utterance],
    folds: Sequence[Fold],
    labels: Sequence[str],
    c_grid: Sequence[float] = C_GRID,
    tune_corpus: str = "ravdess",
    seed: int = 0,
) -> list[FoldResult]:
    """Train/test an SVM per fold (C chosen by inner CV on the training side)."""
    y = np.array([labels.index(u.label) for u in utterances], dtype=np.int64)
    results = []
    for fold in folds:
        tr, te = fold.indices(utterances)
        check_speaker_independent([utterances[i] for i in tr], [utterances[i] for i in te])
        train_utts = [utterances[i] for i in tr]
        c, inner = _select_c(features[tr], y[tr], train_utts, tune_corpus, c_grid, seed)
        pred = _fit_predict(features[tr], y[tr], features[te], c)
        results.append(
            FoldResult(
                fold=fold.index,
                test_speakers=tuple(sorted(fold.test_speakers)),
                n_train=int(tr.size),
                n_test=int(te.size),
                c=c,
                ua=unweighted_accuracy(y[te], pred, len(labels)),
                wa=weighted_accuracy(y[te], pred),
                confusion=confusion_matrix(y[te], pred, len(labels)),
                inner_scores=inner,
            )
        )
        log.info("fold %d: C=%g UA=%.3f WA=%.3f", fold.index, c, results[-1].ua, results[-1].wa)
    return results


def train_test(
    x_train: np.ndarray,
    train: Sequence[Utterance],
    x_test: np.ndarray,
    test: Sequence[Utterance],
    labels: Sequence[str],
    c: float = CROSS_CORPUS_C,
) -> dict[str, object]:
    """One train -> test run (cross-corpus): UA, WA, confusion over ``labels``."""
    check_speaker_independent(train, test)
    y_tr = np.array([labels.index(u.label) for u in train], dtype=np.int64)
    y_te = np.array([labels.index(u.label) for u in test], dtype=np.int64)
    pred = _fit_predict(x_train, y_tr, x_test, c)
    return {
        "n_train": len(train),
        "n_test": len(test),
        "C": c,
        "ua": unweighted_accuracy(y_te, pred, len(labels)),
        "wa": weighted_accuracy(y_te, pred),
        "labels": list(labels),
        "confusion": confusion_matrix(y_te, pred, len(labels)).tolist(),
    }


# --------------------------------------------------------------------------- report


def _summary(results: Sequence[FoldResult]) -> dict[str, object]:
    stats = summarise([{"ua": r.ua, "wa": r.wa} for r in results])
    return {
        "folds": [r.as_dict() for r in results],
        "ua": stats["ua"].as_dict(),
        "wa": stats["wa"].as_dict(),
    }


def run(
    out: Path,
    corpora: Path,
    workers: int = 1,
    c_grid: Sequence[float] = C_GRID,
    progress: bool = True,
) -> dict[str, object]:
    """Extract (or load cached) features, run every protocol, write JSON + PNGs; return report."""
    ravdess_scan = scan_corpus("ravdess", corpora / "ravdess")
    tess_scan = scan_corpus("tess", corpora / "tess")
    cv_speakers = frozenset().union(*(fold.test_speakers for fold in ravdess_folds()))
    ravdess = [u for u in ravdess_scan.utterances if u.speaker in cv_speakers]
    tess = list(tess_scan.utterances)
    everything = ravdess + tess
    t0 = time.perf_counter()
    cache = FeatureCache()
    n_cached = sum(cache.get(FeatureCache.key(u.path)) is not None for u in everything)
    feats, names = extract_features(everything, cache, workers=workers, progress=progress)
    extract_s = time.perf_counter() - t0
    speakers = [u.speaker for u in everything]
    calm_or_neutral = np.array([u.label in ("neutral", "calm") for u in everything])
    variants = {
        "plain": feats.astype(np.float64),
        "speaker_norm": speaker_normalise(feats, speakers),
        "speaker_norm_neutral": speaker_normalise(feats, speakers, calm_or_neutral),
    }
    labels = list(CANONICAL_LABELS)
    folds = ravdess_folds()
    n_r = len(ravdess)
    report: dict[str, object] = {
        "description": "openSMILE eGeMAPSv02 functionals + RBF SVM baseline (speaker-independent)",
        "command": "python -m streamser.training.baseline --out " + str(out),
        "protocol": {
            "folds": "RAVDESS actors 01-20, 5 folds of 4 consecutive actors; train on the other 16",
            "labels": labels,
            "features": f"{len(names)} eGeMAPSv02 functionals (opensmile), 16 kHz mono",
            "speaker_norm": "per-speaker z-normalisation with the speaker's own utterances "
            "(all of them, unlabelled; RAVDESS sets are emotion-balanced, so optimistic)",
            "speaker_norm_neutral": "per-speaker z-normalisation with statistics of the "
            "speaker's neutral and calm clips only (an enrolment-like reference)",
            "classifier": "StandardScaler + SVC(rbf, gamma=scale, class_weight=balanced)",
            "C_selection": f"inner {INNER_K}-fold speaker-independent CV over training RAVDESS "
            f"actors, grid {list(c_grid)}, max UA",
            "cross_corpus": f"7 shared classes (no calm), C={CROSS_CORPUS_C}",
        },
        "data": {
            "ravdess_files": n_r,
            "tess_files": len(tess),
            "skipped": {"ravdess": dict(ravdess_scan.skipped), "tess": dict(tess_scan.skipped)},
        },
        "extraction": {
            "files": len(everything),
            "already_cached": n_cached,
            "workers": workers,
            "seconds": round(extract_s, 1),
        },
        "environment": _environment(),
    }
    ravdess_cv: dict[str, object] = {}
    for train_set, utts in (("ravdess", ravdess), ("ravdess+tess", everything)):
        for variant, x in variants.items():
            name = f"train_{train_set}/{variant}"
            log.info("RAVDESS 5-fold, %s", name)
            results = evaluate_folds(x[: len(utts)], utts, folds, labels, c_grid)
            ravdess_cv[name] = _summary(results)
            total = np.sum([r.confusion for r in results], axis=0)
            tag = f"{train_set.replace('+', '_')}_{variant}"
            png = out.parent / f"baseline_confusion_{tag}.png"
            stats = summarise([{"ua": r.ua} for r in results])["ua"]
            save_confusion_png(
                total,
                labels,
                png,
                title=f"eGeMAPS+SVM, RAVDESS 5-fold, train {train_set}, {variant}\n"
                f"UA {stats.mean:.1%} ± {stats.std:.1%} (summed over folds)",
            )
            ravdess_cv[name]["confusion_png"] = png.name  # type: ignore[index]
    report["ravdess_5fold"] = ravdess_cv

    shared = [label for label in labels if label != "calm"]
    r_idx = [i for i, u in enumerate(ravdess) if u.label in shared]
    t_idx = [n_r + i for i in range(len(tess))]
    cross: dict[str, object] = {}
    for variant, x in variants.items():
        r_utts = [everything[i] for i in r_idx]
        t_utts = [everything[i] for i in t_idx]
        cross[f"ravdess_to_tess/{variant}"] = train_test(x[r_idx], r_utts, x[t_idx], t_utts, shared)
        cross[f"tess_to_ravdess/{variant}"] = train_test(x[t_idx], t_utts, x[r_idx], r_utts, shared)
    report["cross_corpus"] = cross
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    return report


def _environment() -> dict[str, str]:
    import opensmile
    import sklearn

    return {
        "python": platform.python_version(),
        "opensmile": opensmile.__version__,
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
    }


def _print_summary(report: dict[str, object]) -> None:
    cv = report["ravdess_5fold"]
    assert isinstance(cv, dict)
    for name, block in cv.items():
        ua, wa = block["ua"], block["wa"]
        per_fold = " ".join(f"{f['ua']:.3f}" for f in block["folds"])
        print(
            f"{name:40s} UA {ua['mean']:.3f} ± {ua['std']:.3f}  WA {wa['mean']:.3f} ± "
            f"{wa['std']:.3f}  (folds UA: {per_fold})"
        )
    cross = report["cross_corpus"]
    assert isinstance(cross, dict)
    for name, block in cross.items():
        print(f"{name:40s} UA {block['ua']:.3f}  WA {block['wa']:.3f}")


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m streamser.training.baseline",
        description="eGeMAPS + SVM baseline on the speaker-independent RAVDESS folds.",
    )
    parser.add_argument("--out", type=Path, default=Path("docs/model/baseline.json"))
    parser.add_argument("--corpora", type=Path, default=None, help="folder with ravdess/ and tess/")
    parser.add_argument("--workers", type=int, default=1, help="openSMILE threads (default 1)")
    parser.add_argument(
        "--c", type=float, nargs="+", default=list(C_GRID), help="SVM C grid (one value: fixed)"
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        corpora = args.corpora or default_corpora_root()
        if corpora is None:
            raise ConfigError(
                "no corpora folder found; pass --corpora or set STREAMSER_CORPORA to the folder "
                "holding ravdess/ and tess/."
            )
        report = run(args.out, corpora, args.workers, args.c, progress=not args.no_progress)
    except StreamserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _print_summary(report)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
