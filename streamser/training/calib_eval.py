"""Measure what calibrating to a voice is worth, on speakers the model never heard.

    python -m streamser.training.calib_eval --model models/streamser-facenet-s-2.2.0.onnx \\
        --out-dir docs/calibration

For every speaker with several emotions in the evaluation sets, each clip is scored the way the
live engine scores it (mean of the voiced 2 s windows' probabilities at the 0.5 s hop, argmax over
the set's classes), under each adaptation method:

- ``none``: the model's own probabilities;
- ``running``: today's ``--speaker-norm`` (:class:`streamser.core.speaker_norm.SpeakerNormalizer`,
  default settings) fed all of the speaker's clips as one session in a random order;
- ``session prior``: the live default since 0.x (:class:`streamser.core.session_prior.SessionPrior`)
  fed the same session in the same order: label-free, no enrolment;
- ``neutral Ns``: enrolment from N seconds of the speaker's *neutral* speech (first to last voiced
  frame of each clip, clips taken whole until N is reached), then the embedding mean shift of the
  chosen :mod:`streamser.core.adapt` method;
- ``neutral 20s + 1/emotion``: the same plus one clip of each other emotion of the set;
- ``neutral 20s [prior] + session prior``: what ``live --profile`` does by default, the
  profile's adaptation followed by the session prior (enrolment two-fold over the neutral clips,
  so at most half of them enrol);
- ``oracle``: the mean of all the speaker's other clips (the model report's figure; a live
  session never has it).

Enrolment clips are never scored: for clip ``c`` the enrolment is drawn from the speaker's other
clips, preferring sentences other than ``c``'s (RAVDESS has two sentences and four neutral clips
per actor, so its enrolment holds at most ~6 s and shares wording with the scored clip; the
achieved seconds are reported). UA = mean per-class recall, pooled over the set's speakers.
Window features are cached per model file (:mod:`streamser.training.calib_data`).

Evaluation sets (``--speakers`` picks speakers the model did NOT train on; the default,
RAVDESS actors 19-20, suits every shipped model; ``nemo=all ased=all`` only a model trained
without them, such as facenet-s-1.1.0): RAVDESS actors 19-20, nEMO (Polish, 9 speakers), ASED
(Amharic; only the two sentences spoken in all five emotions are scored, its emotion-specific
sentences would give the label away). Corpora where each speaker has one emotion are not used:
normalising per speaker would remove the label there.
"""

from __future__ import annotations

import argparse
import json
import sys
import zlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from streamser.core.adapt import METHODS, Adaptation, build_adaptation
from streamser.core.speaker_norm import SpeakerNormParams
from streamser.training.calib_data import Clip, ClipFeatures, extract, scan

__all__ = ["EvalSet", "evaluate", "main"]

#: Methods measured here (``reference`` needs a speaker-relative model's band means, which the
#: cached embeddings do not hold: see :mod:`streamser.training.reference_eval`).
SHIFT_METHODS = tuple(m for m in METHODS if m != "reference")

FOUR = ("neutral", "happy", "sad", "angry")
ENROL_SECONDS = (5.0, 10.0, 20.0, 40.0)


def profile_and_prior(method: str, prompted: bool = False, session_prior: bool = True) -> str:
    """Row name of a two-fold profile made with ``method`` (neutral-only, or with one prompted
    sentence per emotion), followed by the session prior or not."""
    what = "neutral 20s + 1/emotion" if prompted else "neutral 20s"
    return f"{what} [{method}]{' + session prior' if session_prior else ''} (two-fold)"


#: The live product with a neutral profile: the enrolment prior, then the session class prior.
PROFILE_AND_PRIOR = profile_and_prior("prior")


@dataclass(frozen=True)
class EvalSet:
    """Speakers of one corpus, the classes scored, and (ASED) the sentences scored."""

    name: str
    corpus: str
    speakers: tuple[str, ...]
    classes: tuple[str, ...]
    scored_sentences: frozenset[str] | None = None


def default_sets(speakers: dict[str, tuple[str, ...]]) -> list[EvalSet]:
    """4-class sets (the leave-one-corpus-out figure) and each corpus's own classes."""
    ased = frozenset({"01", "02"})
    out = []
    for corpus, own in (("ravdess", ("neutral", "calm", "happy", "sad", "angry", "fearful",
                                     "disgust", "surprised")),
                        ("nemo", ("neutral", "happy", "sad", "angry", "fearful", "surprised")),
                        ("ased", ("neutral", "happy", "sad", "angry", "fearful"))):
        if corpus not in speakers:
            continue
        sentences = ased if corpus == "ased" else None
        out.append(EvalSet(f"{corpus}/4", corpus, speakers[corpus], FOUR, sentences))
        out.append(EvalSet(f"{corpus}/{len(own)}", corpus, speakers[corpus], own, sentences))
    return out


# --------------------------------------------------------------------------- scoring helpers

def _voiced_rows(f: ClipFeatures) -> np.ndarray:
    idx = np.flatnonzero(f.voiced)
    return idx if len(idx) else np.arange(len(f.voiced))


def _enrol_embeddings(pool: Sequence[Clip], feats: dict[Path, ClipFeatures],
                      seconds: float) -> tuple[np.ndarray, float]:
    """Voiced window embeddings of the first ``seconds`` of speech in ``pool`` (the last clip is
    cut proportionally), and the seconds actually used."""
    rows: list[np.ndarray] = []
    used = 0.0
    for clip in pool:
        f = feats[clip.path]
        voiced = np.flatnonzero(f.voiced)
        if not len(voiced) or f.speech_s <= 0:
            continue
        take = min(1.0, (seconds - used) / f.speech_s)
        k = max(1, round(take * len(voiced)))
        rows.append(f.embedding[voiced[:k]])
        used += take * f.speech_s
        if used >= seconds - 1e-6:
            break
    if not rows:
        return np.zeros((0, 0), dtype=np.float32), 0.0
    return np.concatenate(rows), used


def _pool(clip: Clip, candidates: Sequence[Clip], rng: np.random.Generator) -> list[Clip]:
    """``candidates`` minus ``clip``, other sentences first, each group in a seeded order."""
    others = [c for c in candidates if c.path != clip.path]
    order = rng.permutation(len(others))
    shuffled = [others[i] for i in order]
    return ([c for c in shuffled if c.sentence != clip.sentence]
            + [c for c in shuffled if c.sentence == clip.sentence])


def _ua(y: Sequence[int], pred: Sequence[int], n: int) -> float:
    y_arr, p_arr = np.asarray(y), np.asarray(pred)
    recalls = [float(np.mean(p_arr[y_arr == k] == k)) for k in range(n) if np.any(y_arr == k)]
    return float(np.mean(recalls))


# --------------------------------------------------------------------------- methods

Scorer = Callable[[Clip], np.ndarray | None]


@dataclass
class SpeakerData:
    """One speaker's clips and features, plus the model's head."""

    clips: list[Clip]
    feats: dict[Path, ClipFeatures]
    params: SpeakerNormParams
    labels: tuple[str, ...]
    seed: int

    def rng(self, clip: Clip) -> np.random.Generator:
        """A generator seeded by the clip, so every method draws the same enrolment."""
        return np.random.default_rng([self.seed, zlib.crc32(clip.path.name.encode())])

    def neutral(self) -> list[Clip]:
        """The speaker's neutral clips."""
        return [c for c in self.clips if c.label == "neutral"]


def _score_none(sp: SpeakerData) -> Scorer:
    def score(clip: Clip) -> np.ndarray:
        f = sp.feats[clip.path]
        return f.probs[_voiced_rows(f)].mean(axis=0)
    return score


#: One live adaptation step: (window embedding, model probabilities, voiced) -> adapted
#: probabilities, or None while it still passes the model's own through.
Step = Callable[[np.ndarray, np.ndarray, bool], np.ndarray | None]


def _score_session(sp: SpeakerData, step: Step) -> Scorer:
    """All the speaker's clips as one live session in a seeded random order (the same order
    for every method), each window through ``step``: past and present windows only."""
    order = np.random.default_rng(sp.seed).permutation(len(sp.clips))
    result: dict[Path, np.ndarray] = {}
    for i in order:
        clip = sp.clips[i]
        f = sp.feats[clip.path]
        window_probs = []
        for e, own, v in zip(f.embedding, f.probs, f.voiced, strict=True):
            out = step(e, own, bool(v))
            window_probs.append(own if out is None else out)
        result[clip.path] = np.asarray(window_probs)[_voiced_rows(f)].mean(axis=0)

    def score(clip: Clip) -> np.ndarray | None:
        return result.get(clip.path)
    return score


def _score_running(sp: SpeakerData) -> Scorer:
    """Today's ``--speaker-norm``: the running embedding mean."""
    from streamser.core.speaker_norm import SpeakerNormalizer

    norm = SpeakerNormalizer(sp.params)
    return _score_session(sp, lambda e, _own, voiced: norm.update(e, voiced))


def _score_session_prior(sp: SpeakerData) -> Scorer:
    """The live default: the session class prior."""
    from streamser.core.session_prior import SessionPrior

    prior = SessionPrior(len(sp.labels))
    return _score_session(sp, lambda _e, own, voiced: prior.update(own, voiced))


def _score_shift(sp: SpeakerData, method: str, enrol: Callable[[Clip], np.ndarray | None]
                 ) -> Scorer:
    def score(clip: Clip) -> np.ndarray | None:
        emb = enrol(clip)
        if emb is None:
            return None
        return _adapted(sp, method, {"neutral": emb}, clip)
    return score


def _adapted(sp: SpeakerData, method: str, enrolment: dict[str, np.ndarray],
             clip: Clip) -> np.ndarray:
    f = sp.feats[clip.path]
    adaptation = build_adaptation(sp.params, sp.labels, method, enrolment)
    return adaptation.probs(sp.params, f.embedding[_voiced_rows(f)]).mean(axis=0)


def _neutral_enrol(sp: SpeakerData, seconds: float, used: list[float]
                   ) -> Callable[[Clip], np.ndarray | None]:
    neutral = sp.neutral()

    def enrol(clip: Clip) -> np.ndarray | None:
        emb, got = _enrol_embeddings(_pool(clip, neutral, sp.rng(clip)), sp.feats, seconds)
        used.append(got)
        return emb if len(emb) else None
    return enrol


def _prompted_enrol(sp: SpeakerData, classes: Sequence[str], seconds: float,
                    used: list[float]) -> Callable[[Clip], dict[str, np.ndarray] | None]:
    """Neutral ``seconds`` plus one clip of each other class (per class embeddings)."""
    neutral = _neutral_enrol(sp, seconds, used)

    def enrol(clip: Clip) -> dict[str, np.ndarray] | None:
        base = neutral(clip)
        if base is None:
            return None
        out = {"neutral": base}
        rng = sp.rng(clip)
        for label in classes:
            if label == "neutral":
                continue
            pool = _pool(clip, [c for c in sp.clips if c.label == label], rng)
            for cand in pool:
                f = sp.feats[cand.path]
                if f.voiced.any():
                    out[label] = f.embedding[f.voiced]
                    break
        return out
    return enrol


def _score_prompted(sp: SpeakerData, method: str,
                    enrol: Callable[[Clip], dict[str, np.ndarray] | None]) -> Scorer:
    def score(clip: Clip) -> np.ndarray | None:
        per_class = enrol(clip)
        if per_class is None:
            return None
        return _adapted(sp, method, per_class, clip)
    return score


def _profile_then_prior(sp: SpeakerData, adaptation: Adaptation,
                        session_prior: bool = True) -> Step:
    """One live step with a profile: adapt the window, then (by default) the session prior on
    the result."""
    from streamser.core.session_prior import SessionPrior

    prior = SessionPrior(len(sp.labels))

    def step(e: np.ndarray, _own: np.ndarray, voiced: bool) -> np.ndarray:
        adapted = adaptation.probs(sp.params, e[None])[0]
        if not session_prior:
            return adapted
        out = prior.update(adapted, voiced)
        return adapted if out is None else out
    return step


def _score_profile_session(sp: SpeakerData, seconds: float, used: list[float],
                           method: str = "prior") -> Scorer:
    """What the product does with a profile: the neutral-enrolment adaptation (``method``) on
    every window, then the session class prior on the adapted probabilities (one session per
    speaker, the same order as the other session rows).

    Two-fold, so no clip is scored by a profile that contains it: the speaker's neutral clips
    are split in two seeded halves; each half enrols a profile (up to ``seconds`` of speech),
    clips of the first half are scored by the second half's session and every other clip by
    the first half's.
    """
    neutral = sp.neutral()
    perm = np.random.default_rng([sp.seed, 1]).permutation(len(neutral))
    halves = [[neutral[i] for i in perm[0::2]], [neutral[i] for i in perm[1::2]]]
    walks: list[Scorer] = []
    for half in halves:
        emb, got = _enrol_embeddings(half, sp.feats, seconds)
        used.append(got)
        if not len(emb):
            return lambda _clip: None
        adaptation = build_adaptation(sp.params, sp.labels, method, {"neutral": emb})
        walks.append(_score_session(sp, _profile_then_prior(sp, adaptation)))
    first = {c.path for c in halves[0]}

    def score(clip: Clip) -> np.ndarray | None:
        return walks[1](clip) if clip.path in first else walks[0](clip)
    return score


def _score_prompted_session(sp: SpeakerData, classes: Sequence[str], seconds: float,
                            used: list[float], method: str, session_prior: bool = True) -> Scorer:
    """What the product does with a prompted profile (neutral + one clip per other class of
    ``classes``), followed by the session prior (or not), in one session per speaker.

    Two-fold: the speaker's clips are split in two seeded halves; each half enrols a profile
    from its own clips only (up to ``seconds`` of neutral speech, then the first voiced clip of
    each other class) and its session scores the *other* half's clips.
    """
    perm = np.random.default_rng([sp.seed, 2]).permutation(len(sp.clips))
    halves = [[sp.clips[i] for i in perm[0::2]], [sp.clips[i] for i in perm[1::2]]]
    walks: list[Scorer] = []
    for half in halves:
        emb, got = _enrol_embeddings([c for c in half if c.label == "neutral"], sp.feats, seconds)
        used.append(got)
        if not len(emb):
            return lambda _clip: None
        groups = {"neutral": emb}
        for label in (c for c in classes if c != "neutral"):
            voiced = [sp.feats[c.path] for c in half
                      if c.label == label and sp.feats[c.path].voiced.any()]
            if voiced:
                groups[label] = voiced[0].embedding[voiced[0].voiced]
        adaptation = build_adaptation(sp.params, sp.labels, method, groups)
        walks.append(_score_session(sp, _profile_then_prior(sp, adaptation, session_prior)))
    first = {c.path for c in halves[0]}

    def score(clip: Clip) -> np.ndarray | None:
        return walks[1](clip) if clip.path in first else walks[0](clip)
    return score


def _score_oracle(sp: SpeakerData) -> Scorer:
    def score(clip: Clip) -> np.ndarray | None:
        rows = [sp.feats[c.path].embedding[_voiced_rows(sp.feats[c.path])]
                for c in sp.clips if c.path != clip.path]
        return _adapted(sp, "mean", {"neutral": np.concatenate(rows)}, clip)
    return score


# --------------------------------------------------------------------------- evaluation

def _first_enrolment(methods: Sequence[str]) -> str:
    """``"prior]"`` from the first enrolment row name (``"neutral 5s [prior]"``)."""
    return next(m for m in methods if "[" in m).split("[")[1]


def method_names(shift: Sequence[str], prompted: Sequence[str]) -> list[str]:
    """Row names, in table order."""
    rows = ["none", "running", "session prior"]
    rows += [f"neutral {s:g}s [{m}]" for m in shift for s in ENROL_SECONDS]
    rows += [f"neutral 20s + 1/emotion [{m}]" for m in prompted]
    rows += [profile_and_prior(m) for m in shift]
    rows += [profile_and_prior(m, prompted=True, session_prior=sp) for m in prompted
             for sp in (False, True)]
    return [*rows, "oracle"]


def evaluate(model: Path, sets: Sequence[EvalSet], shift: Sequence[str] = ("prior", "mean"),
             prompted: Sequence[str] = ("prototypes",), seed: int = 0) -> dict:
    """UA of every method on every set; returns a JSON-ready dict."""
    from streamser.model import ModelRunner

    runner = ModelRunner.load(model, use_gpu=False)
    params = SpeakerNormParams.from_metadata(runner.spec.extra, len(runner.spec.labels))
    if params is None:
        raise SystemExit(f"{model} has no 'speaker_norm' metadata: nothing to adapt with")
    labels = runner.spec.labels
    rows = method_names(shift, prompted)
    results: dict[str, dict] = {}
    clips_by_corpus: dict[str, list[Clip]] = {}
    for s in sets:
        key = f"{s.corpus}:{','.join(s.speakers)}"
        if key not in clips_by_corpus:
            clips_by_corpus[key] = scan(s.corpus, s.speakers)
        all_clips = clips_by_corpus[key]
        feats = extract(model, all_clips)
        y: list[int] = []
        used_speakers: set[str] = set()
        preds: dict[str, list[int]] = defaultdict(list)
        enrolled: dict[str, list[float]] = defaultdict(list)
        cols = [labels.index(c) for c in s.classes]
        speakers = sorted({c.speaker for c in all_clips})
        for spk in speakers:
            sp = SpeakerData([c for c in all_clips if c.speaker == spk], feats, params,
                             labels, seed)
            scored = [c for c in sp.clips if c.label in s.classes
                      and (s.scored_sentences is None or c.sentence in s.scored_sentences)]
            if len({c.label for c in scored}) < 2 or len(sp.neutral()) < 2:
                continue  # one emotion only, or no neutral speech left to enrol from
            scorers: dict[str, Scorer] = {"none": _score_none(sp), "running": _score_running(sp),
                                          "session prior": _score_session_prior(sp)}
            for m in shift:
                for sec in ENROL_SECONDS:
                    name = f"neutral {sec:g}s [{m}]"
                    scorers[name] = _score_shift(sp, m, _neutral_enrol(sp, sec, enrolled[name]))
            for m in prompted:
                name = f"neutral 20s + 1/emotion [{m}]"
                scorers[name] = _score_prompted(
                    sp, m, _prompted_enrol(sp, s.classes, 20.0, enrolled[name]))
            for m in shift:
                name = profile_and_prior(m)
                scorers[name] = _score_profile_session(sp, 20.0, enrolled[name], m)
            for m in prompted:
                for with_prior in (False, True):
                    name = profile_and_prior(m, prompted=True, session_prior=with_prior)
                    scorers[name] = _score_prompted_session(sp, s.classes, 20.0, enrolled[name],
                                                            m, with_prior)
            scorers["oracle"] = _score_oracle(sp)
            for clip in scored:
                outs = {name: fn(clip) for name, fn in scorers.items()}
                if any(o is None for o in outs.values()):
                    continue
                y.append(s.classes.index(clip.label))
                used_speakers.add(spk)
                for name, probs in outs.items():
                    assert probs is not None
                    preds[name].append(int(np.argmax(probs[cols])))
        n = len(s.classes)
        results[s.name] = {
            "corpus": s.corpus, "classes": list(s.classes), "clips": len(y),
            "speakers": len(used_speakers),
            "ua": {name: round(_ua(y, preds[name], n), 4) for name in rows},
            "enrol_seconds": {name: round(float(np.mean(v)), 2) for name, v in enrolled.items()
                              if v},
        }
        print(f"{s.name}: {len(y)} clips scored", file=sys.stderr)
    return {"model": str(model), "model_version": runner.spec.model_version,
            "methods": rows, "sets": results, "seed": seed}


def markdown(result: dict) -> str:
    """The UA table (percent), one column per set and the mean of the 4-class sets."""
    sets = list(result["sets"])
    four = [s for s in sets if s.split()[0].endswith("/4")]
    head = ["method", *sets, "mean 4-class", "gain 4-class"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    base = np.mean([result["sets"][s]["ua"]["none"] for s in four]) if four else 0.0
    for m in result["methods"]:
        cells = [f"{100 * result['sets'][s]['ua'][m]:.1f}" for s in sets]
        mean4 = float(np.mean([result["sets"][s]["ua"][m] for s in four])) if four else 0.0
        lines.append("| " + " | ".join([m, *cells, f"{100 * mean4:.1f}",
                                        f"{100 * (mean4 - base):+.1f}"]) + " |")
    lines.append("")
    lines.append("Enrolment seconds actually used (mean over scored clips): " + "; ".join(
        f"{s}: " + ", ".join(f"{k.split(' [')[0]} {v:g}" for k, v in
                             result["sets"][s]["enrol_seconds"].items() if k.endswith(
                                 f"[{_first_enrolment(result['methods'])}"))
        for s in sets if result["sets"][s]["enrol_seconds"]))
    lines.append("")
    lines.append("Clips scored / speakers: " + "; ".join(
        f"{s} {result['sets'][s]['clips']}/{result['sets'][s]['speakers']}" for s in sets))
    return "\n".join(lines) + "\n"


def _speakers(values: Sequence[str]) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for v in values:
        corpus, _, ids = v.partition("=")
        out[corpus] = () if ids in ("", "all") else tuple(i for i in ids.split(",") if i)
    return out


def _merge(parts: Sequence[dict]) -> dict:
    """One result from several models' runs (LOCO: each model on its held-out corpus)."""
    merged = dict(parts[0])
    merged["sets"] = {}
    for part in parts:
        for name, body in part["sets"].items():
            merged["sets"][name] = {**body, "model": part["model"],
                                    "model_version": part["model_version"]}
    merged["model_version"] = "+".join(dict.fromkeys(p["model_version"] for p in parts))
    merged["model"] = [p["model"] for p in parts]
    return merged


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    ap = argparse.ArgumentParser(prog="python -m streamser.training.calib_eval",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, help="the ONNX model to measure on --speakers")
    ap.add_argument("--speakers", nargs="+", default=["ravdess=19,20"],
                    help="CORPUS=ids|all of speakers --model never trained on "
                    "(default: ravdess=19,20; add nemo=all ased=all only for a model trained "
                    "without them, e.g. facenet-s-1.1.0)")
    ap.add_argument("--loco", nargs="+", default=[], metavar="CORPUS=MODEL",
                    help="leave-one-corpus-out models: each is measured on all speakers of the "
                    "corpus it was trained without (e.g. nemo=runs/loco/nemo.onnx)")
    ap.add_argument("--shift", nargs="+", default=["prior", "mean"], choices=SHIFT_METHODS,
                    help="adaptation methods for neutral-only enrolment")
    ap.add_argument("--prompted", nargs="+", default=["prototypes"], choices=SHIFT_METHODS,
                    help="adaptation methods for neutral + one clip per emotion")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out-dir", type=Path, help="write NAME.json and NAME.md (the table) "
                    "into this folder, e.g. docs/calibration (NAME: the model version)")
    args = ap.parse_args(argv)
    if args.model is None and not args.loco:
        ap.error("give --model PATH, --loco CORPUS=PATH..., or both")
    parts = []
    if args.model is not None:
        parts.append(evaluate(args.model, default_sets(_speakers(args.speakers)), args.shift,
                              args.prompted, args.seed))
    for item in args.loco:
        corpus, _, path = item.partition("=")
        sets = [replace(s, name=f"{s.name} loco") for s in default_sets({corpus: ()})]
        parts.append(evaluate(Path(path), sets, args.shift, args.prompted, args.seed))
    result = _merge(parts)
    table = markdown(result)
    print(table)
    if args.out_dir:
        args.out_dir.mkdir(parents=True, exist_ok=True)
        version = str(result["model_version"])
        if args.loco and not args.model and "-without-" in version:  # calib_loco's versions
            version = version.split("-without-")[0]  # "loco-v4-s2100-without-nemo+..."
        elif args.loco:
            version += "-loco"
        command = " ".join(["python -m streamser.training.calib_eval", *(argv or sys.argv[1:])])
        (args.out_dir / f"{version}.json").write_text(json.dumps(result, indent=1) + "\n")
        (args.out_dir / f"{version}.md").write_text(
            f"Calibration figures of {result['model_version']} (UA %), written by `{command}`; "
            "see docs/calibration.md.\n\n" + table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
