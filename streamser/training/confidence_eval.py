"""Does any per-clip signal tell a right label from a wrong one on voices the model never heard?

"Uncertain" (issue 8) is only informative if something the live analyzer can compute ranks
right answers above wrong ones. For every leave-one-corpus-out run of a recipe
(``runs/loco-<recipe>-s<steps>/<target>/scores_all.pkl``: every labelled clip of the held-out
corpus, scored window by window by the model trained without it) this measures the area under
the ROC curve (AUROC; 0.5 = no signal) of each signal for "the clip's top label is right":

- ``top_prob``: the top clip probability (mean of the window softmaxes at ``temperature``);
- ``margin``: top minus second probability;
- ``neg_entropy``: minus the entropy of the clip probabilities;
- ``window_agreement``: share of the clip's windows whose top label is the clip's;
- ``arousal_agreement``: the training-only arousal head's probability of the arousal level the
  top label implies (``data.AROUSAL_OF_LABEL``; disgust counts as normal) — would exporting the
  head help?
- ``learned``: a logistic regression on all of the above, fitted on the *other* held-out
  corpora's clips (no corpus judges itself), class-balanced.

Usage::

    python -m streamser.training.confidence_eval --recipe v9c [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from streamser.training.data import AROUSAL_OF_LABEL
from streamser.training.metrics import auroc
from streamser.training.prior_eval import softmax_rows
from streamser.training.train import ClipScores

__all__ = ["SIGNALS", "clip_signals", "evaluate", "main"]

#: Signals in the order of the feature matrix; higher = "more likely right".
SIGNALS: tuple[str, ...] = (
    "top_prob", "margin", "neg_entropy", "window_agreement", "arousal_agreement")


def clip_signals(
    scores: ClipScores,
    temperature: float = 1.0,
    arousal_head: tuple[np.ndarray, np.ndarray] | None = None,
    emb_scale: float = 16.0,
) -> tuple[np.ndarray, np.ndarray]:
    """``(pred [n_clips], features [n_clips, len(SIGNALS)])`` for one run's clips.

    ``arousal_head`` is ``(weight [3, D], bias [3])`` applied to ``emb_scale`` times the window
    embedding as in training; without it ``arousal_agreement`` is ``nan``.
    """
    probs = scores.probs(temperature)
    pred = probs.argmax(axis=1)
    ordered = np.sort(probs, axis=1)
    entropy = -(probs * np.log(probs.clip(1e-12))).sum(axis=1)
    agreement = np.array([(z.argmax(axis=1) == p).mean()
                          for z, p in zip(scores.window_logits, pred, strict=True)])
    level = np.array([AROUSAL_OF_LABEL.get(scores.labels[p], 1) for p in pred])
    if arousal_head is None:
        arousal = np.full(len(pred), np.nan)
    else:
        w, b = arousal_head
        arousal = np.array([
            softmax_rows(emb_scale * e @ w.T + b).mean(axis=0)[lv]
            for e, lv in zip(scores.window_emb, level, strict=True)])
    feats = np.stack([ordered[:, -1], ordered[:, -1] - ordered[:, -2], -entropy, agreement,
                      arousal], axis=1)
    return pred, feats


def _learned(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    mu, sd = train_x.mean(axis=0), train_x.std(axis=0).clip(1e-9)
    clf = LogisticRegression(class_weight="balanced", max_iter=1000)
    clf.fit((train_x - mu) / sd, train_y)
    return np.asarray(clf.predict_proba((test_x - mu) / sd)[:, 1])


def evaluate(runs: dict[str, dict], temperature: float,
             arousal_heads: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
             emb_scale: float = 16.0) -> dict:
    """AUROC of every signal per held-out corpus; ``runs`` maps a corpus to its
    ``scores_all.pkl`` content (``scores``, ``y``), ``arousal_heads`` to its model's head."""
    feats, right = {}, {}
    for target, run in runs.items():
        head = (arousal_heads or {}).get(target)
        pred, x = clip_signals(run["scores"], temperature, head, emb_scale)
        feats[target], right[target] = x, pred == np.asarray(run["y"])
    usable = [i for i in range(len(SIGNALS))
              if all(np.isfinite(x[:, i]).all() for x in feats.values())]
    rows = {}
    for target in runs:
        row: dict = {"n": int(right[target].size), "accuracy": float(right[target].mean())}
        row.update({SIGNALS[i]: auroc(feats[target][:, i], right[target]) for i in usable})
        others = [o for o in runs if o != target]
        if others:
            tx = np.concatenate([feats[o][:, usable] for o in others])
            ty = np.concatenate([right[o] for o in others])
            row["learned"] = auroc(_learned(tx, ty, feats[target][:, usable]), right[target])
        rows[target] = row
    return {"temperature": temperature, "signals": [SIGNALS[i] for i in usable] + ["learned"],
            "targets": rows}


def main(argv: Sequence[str] | None = None) -> int:
    import torch

    from streamser.training.loco import LOCO_TARGETS, RECIPES, _recipe, run_root
    from streamser.training.train import TrainConfig

    ap = argparse.ArgumentParser(prog="python -m streamser.training.confidence_eval",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--recipe", required=True, choices=sorted(RECIPES))
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--temperature", type=float, default=None,
                    help="default: the recipe's leave-one-corpus-out temperature")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    root = run_root("loco", args.recipe, _recipe(args.recipe, args.steps, None))
    runs, heads, scale = {}, {}, 16.0
    for target in LOCO_TARGETS:
        f = root / target / "scores_all.pkl"
        if not f.exists():
            continue
        with open(f, "rb") as fh:
            runs[target] = pickle.load(fh)
        state = torch.load(root / target / "model.pt", map_location="cpu", weights_only=False)
        weights = state["model"]
        if "arousal_head.weight" in weights:
            heads[target] = (weights["arousal_head.weight"].numpy(),
                             weights["arousal_head.bias"].numpy())
        scale = TrainConfig.from_json(state["config"]).model.scale
    if not runs:
        raise SystemExit(f"no scores_all.pkl under {root}: run "
                         f"python -m streamser.training.loco loco --recipe {args.recipe}")
    temperature = args.temperature
    if temperature is None:
        from streamser.training.loco import fit_temperature_restricted

        shared = []
        for target in runs:
            with open(root / target / "scores.pkl", "rb") as fh:
                shared.append(pickle.load(fh))
        temperature = fit_temperature_restricted(shared)
    result = {"recipe": args.recipe, "root": str(root),
              **evaluate(runs, temperature, heads, scale)}
    text = json.dumps(result, indent=1)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
    for target, row in result["targets"].items():
        print(f"{target:8s} acc {row['accuracy']:.3f} " + " ".join(
            f"{s} {row[s]:.2f}" for s in result["signals"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
