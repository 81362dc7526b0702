"""How much the live session-prior correction gains on voices the model never heard.

For every leave-one-corpus-out run of a recipe (``runs/loco-<recipe>-s<steps>/<target>/
scores.pkl``: the held-out corpus's window logits), each test speaker becomes one live session:
their clips are played in a random order and every window goes, in order, through
:class:`streamser.core.session_prior.SessionPrior` exactly as the analyzer does it (observe,
then correct; the model's own probabilities until ``min_windows`` voiced windows). A clip's
score is the mean of its windows' (corrected) probabilities, restricted to the four shared
classes. Nothing but the session's own past and present windows is used — no labels, no other
speaker — so the figure is what a live user would get, averaged over ``orders`` shuffles.

Two sessions per speaker:

- ``balanced``: all of the speaker's clips (the corpora are roughly emotion-balanced);
- ``neutral70``: the speaker's neutral clips plus a random subset of the others so that 70 % of
  the session is neutral — closer to how people talk to a desktop;
- ``neutral100``: neutral clips only — the case the correction's assumption (a mix of emotions)
  fits worst; its figure is the share of clips still called neutral.

Also printed: the label-free oracle (each clip divided by the mean prediction over *all* of its
speaker's clips). Usage::

    python -m streamser.training.prior_eval --recipe v3 [--steps 1500] [--json out.json]
    python -m streamser.training.prior_eval --onnx models/streamser-facenet-s-1.1.0.onnx \
        --corpora nemo ased          # an exported model on corpora it never heard
"""

from __future__ import annotations

import argparse
import json
import logging
import pickle
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from streamser.core.session_prior import PriorConfig, SessionPrior
from streamser.training import metrics
from streamser.training.experiments import RESULTS
from streamser.training.loco import SHARED4, _recipe, restrict, run_root

__all__ = ["evaluate_target", "main", "session_probs", "softmax_rows"]

log = logging.getLogger(__name__)

NEUTRAL_SHARE = 0.7
#: Session kinds; ``neutral100`` (only neutral clips) reports the share still called neutral.
KINDS = ("balanced", "neutral70", "neutral100")


def softmax_rows(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of window logits [n, C]."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def session_probs(window_probs: Sequence[np.ndarray], order: Sequence[int] | np.ndarray,
                  config: PriorConfig | None) -> np.ndarray:
    """Clip probabilities [len(order), C] of one live session playing clips in ``order``.

    ``window_probs[i]`` is clip ``i``'s window probabilities [n_windows, C]; ``config`` None
    gives the model's own probabilities (no correction). Every window counts as voiced (the
    clips are trimmed speech)."""
    n_labels = window_probs[0].shape[1]
    prior = SessionPrior(n_labels, config) if config is not None else None
    out = []
    for i in order:
        rows = []
        for p in window_probs[i]:
            q = prior.update(p, voiced=True) if prior is not None else None
            rows.append(p if q is None else q)
        out.append(np.mean(rows, axis=0))
    return np.stack(out)


def _oracle(window_probs: Sequence[np.ndarray], idx: np.ndarray) -> np.ndarray:
    mean = np.concatenate([window_probs[i] for i in idx]).mean(axis=0)
    clip = np.stack([window_probs[i].mean(axis=0) for i in idx]) / mean
    return clip / clip.sum(axis=1, keepdims=True)


def load_loco_scores(scores_path: Path) -> tuple[list[np.ndarray], np.ndarray, np.ndarray,
                                                  list[str]]:
    """``(window probabilities per clip, y over SHARED4, speakers, labels)`` of a LOCO run."""
    with open(scores_path, "rb") as fh:
        d = pickle.load(fh)
    return ([softmax_rows(z) for z in d["scores"].window_logits], np.asarray(d["y"]),
            np.asarray(d["speakers"]), list(d["labels"]))


def onnx_scores(model: Path, corpus: str, speakers: Sequence[str] = ()
                ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, list[str]]:
    """The same tuple from an exported model on a corpus it never heard (or only on its
    ``speakers``, e.g. ``("19", "20")`` for the RAVDESS actors held out of every final model)."""
    from streamser.contract import INPUT_NAME, parse_metadata
    from streamser.training.data import engine_windows
    from streamser.training.evaluate import onnx_session
    from streamser.training.loco import _pool

    sess = onnx_session(model, threads=1)
    spec = parse_metadata(sess.get_modelmeta().custom_metadata_map, str(model))
    wanted = {f"{corpus}:{s}" for s in speakers}
    utts, audio = _pool([corpus], lambda u: u.label in SHARED4
                        and (not wanted or u.speaker in wanted))
    wp = [sess.run(None, {INPUT_NAME: engine_windows(c, spec.window_samples,
                                                     spec.hop_samples)})[0] for c in audio]
    y = np.array([SHARED4.index(u.label) for u in utts])
    return wp, y, np.array([u.speaker for u in utts]), list(spec.labels)


def evaluate_target(wp: Sequence[np.ndarray], y: np.ndarray, spk: np.ndarray,
                    labels: list[str], configs: dict[str, PriorConfig | None],
                    orders: int = 5, seed: int = 0) -> dict:
    """UA per method and session kind for one held-out corpus (see the module docstring).

    ``wp[i]``: clip ``i``'s window probabilities [n_windows, len(labels)]; ``y``: its class
    index in :data:`SHARED4`; ``spk``: its speaker."""
    neutral = SHARED4.index("neutral")
    rng = np.random.default_rng(seed)
    out: dict = {"n_clips": len(y), "n_speakers": len(set(spk))}
    for kind in KINDS:
        truth: list[np.ndarray] = []
        preds: dict[str, list[np.ndarray]] = {name: [] for name in configs}
        for _ in range(orders):
            for s in sorted(set(spk)):
                idx = np.flatnonzero(spk == s)
                if kind == "neutral100":
                    idx = idx[y[idx] == neutral]
                    if len(idx) == 0:
                        continue
                elif kind == "neutral70":
                    neu, rest = idx[y[idx] == neutral], idx[y[idx] != neutral]
                    keep = round(len(neu) * (1 - NEUTRAL_SHARE) / NEUTRAL_SHARE)
                    if len(neu) == 0 or keep == 0:
                        continue
                    idx = np.concatenate([neu, rng.choice(rest, min(keep, len(rest)),
                                                          replace=False)])
                order = rng.permutation(idx)
                truth.append(y[order])
                for name, cfg in configs.items():
                    p = session_probs(wp, order, cfg)
                    preds[name].append(restrict(p, labels, SHARED4).argmax(axis=1))
        yt = np.concatenate(truth)
        res = {}
        for name in configs:
            pr = np.concatenate(preds[name])
            share = np.bincount(pr, minlength=4) / len(pr)
            res[name] = {"ua": (metrics.unweighted_accuracy(yt, pr, 4) if kind != "neutral100"
                                else float(np.mean(pr == neutral))),
                         "wa": metrics.weighted_accuracy(yt, pr),
                         "most_predicted": SHARED4[int(share.argmax())],
                         "most_predicted_share": float(share.max())}
        out[kind] = res
    oracle = np.zeros((len(y), len(labels)))
    for s in set(spk):
        idx = np.flatnonzero(spk == s)
        oracle[idx] = _oracle(wp, idx)
    out["oracle_ua"] = metrics.unweighted_accuracy(
        y, restrict(oracle, labels, SHARED4).argmax(axis=1), 4)
    return out


#: The shipped setting first (fixed before looking at any held-out corpus), then a small grid
#: for sensitivity only.
CONFIGS: dict[str, PriorConfig | None] = {
    "none": None,
    "prior": PriorConfig(),
    "prior_half": PriorConfig(strength=0.5),
    "prior_short": PriorConfig(max_windows=120),
    "prior_late": PriorConfig(min_windows=60),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: evaluate every finished LOCO target of a recipe."""
    ap = argparse.ArgumentParser(prog="python -m streamser.training.prior_eval",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--recipe", default="v3")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--onnx", type=Path, default=None,
                    help="score this exported model on whole corpora instead of LOCO runs")
    ap.add_argument("--corpora", nargs="+", default=["nemo", "ased"],
                    help="with --onnx: corpora the model never heard")
    ap.add_argument("--speakers", nargs="+", default=[],
                    help="with --onnx: only these speakers of the corpora (e.g. 19 20)")
    ap.add_argument("--orders", type=int, default=5, help="random clip orders per speaker")
    ap.add_argument("--json", type=Path, default=None,
                    help="write here (default docs/model/results/prior-<recipe>.json)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = _recipe(args.recipe, args.steps, None)
    root = run_root("loco", args.recipe, cfg)
    out_name = args.onnx.stem if args.onnx else args.recipe
    result: dict = {"recipe": None if args.onnx else args.recipe,
                    "model": str(args.onnx) if args.onnx else None, "orders": args.orders,
                    "configs": {k: (asdict(v) if v else None) for k, v in CONFIGS.items()},
                    "targets": {}}
    for target in (args.corpora if args.onnx else ("ravdess", "tess", "nemo", "ased")):
        path = root / target / "scores.pkl"
        if args.onnx:
            data = onnx_scores(args.onnx, target, args.speakers)
        elif path.exists():
            data = load_loco_scores(path)
        else:
            continue
        r = evaluate_target(*data, CONFIGS, orders=args.orders)
        result["targets"][target] = r
        print(f"{target:8s} oracle {r['oracle_ua']:.3f}  " + "  ".join(
            f"{kind}: " + " ".join(f"{k} {v['ua']:.3f}" for k, v in r[kind].items())
            for kind in KINDS))
    for kind in KINDS:
        for name in CONFIGS:
            uas = [r[kind][name]["ua"] for r in result["targets"].values()]
            if uas:
                print(f"mean {kind:9s} {name:12s} {np.mean(uas):.3f}")
    out = args.json or RESULTS / f"prior-{out_name}.json"
    out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
