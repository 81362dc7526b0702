"""Leave-one-corpus-out of an ensemble: the mean of several recipes' window logits.

Each member is a recipe whose leave-one-corpus-out runs are finished
(``runs/loco-<recipe>-s<steps>/<target>/scores.pkl``). For every target that all members have
scored, the ensemble's window logits are the members' mean (the same engine windows of the same
clips: checked), which is what one ONNX graph holding the members and averaging their logits
would output. Reported per target, for each member and the ensemble: the own output's UA / WA
and most-predicted share on the four shared classes, and the UA after the live session prior
(:mod:`streamser.training.prior_eval`'s ``balanced`` sessions, the shipped
:class:`~streamser.core.session_prior.PriorConfig`). Members that fine-tune the same first-stage
model err together (session 11); members from independently trained first stages are the case
this is for. Usage::

    python -m streamser.training.ensemble_eval --members v9c v9g [--json out.json]

Writes ``docs/model/results/ensemble-<member>+<member>....json`` unless ``--json`` is given.
Evaluation only: nothing here is used by the live analyzer.
"""

from __future__ import annotations

import argparse
import json
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from streamser.core.session_prior import PriorConfig
from streamser.training.experiments import RESULTS
from streamser.training.loco import LOCO_TARGETS, SHARED4, _metrics, _recipe, restrict, run_root
from streamser.training.prior_eval import evaluate_target, softmax_rows


def mean_logits(runs: Sequence[dict]) -> list[np.ndarray]:
    """Per clip, the members' mean window logits ``[n_windows, n_labels]``.

    ``runs`` are loaded ``scores.pkl`` dicts of one target; they must hold the same clips in
    the same order, scored on the same windows with the same labels (else ``ValueError``
    naming the first difference)."""
    first = runs[0]
    for other in runs[1:]:
        if list(other["paths"]) != list(first["paths"]):
            raise ValueError("ensemble members scored different clips (or another order)")
        if tuple(other["labels"]) != tuple(first["labels"]):
            raise ValueError(f"ensemble members' labels differ: {tuple(first['labels'])} vs "
                             f"{tuple(other['labels'])}")
    out = []
    for i, _ in enumerate(first["paths"]):
        logits = [np.asarray(r["scores"].window_logits[i], dtype=np.float64) for r in runs]
        if len({z.shape for z in logits}) != 1:
            raise ValueError(f"clip {first['paths'][i]}: the members scored different windows "
                             f"({[z.shape for z in logits]})")
        out.append(np.mean(logits, axis=0))
    return out


def evaluate(logits: Sequence[np.ndarray], run: dict, orders: int = 5) -> dict:
    """Own-output metrics and session-prior UA of window ``logits`` on ``run``'s clips."""
    wp = [softmax_rows(z) for z in logits]
    probs = np.stack([p.mean(axis=0) for p in wp])
    row = _metrics(restrict(probs, run["labels"], SHARED4), np.asarray(run["y"]), SHARED4)
    prior = evaluate_target(wp, np.asarray(run["y"]), np.asarray(run["speakers"]),
                            list(run["labels"]), {"prior": PriorConfig()}, orders=orders)
    row["ua_prior"] = prior["balanced"]["prior"]["ua"]
    return row


def ensemble_table(members: Sequence[str], steps: Sequence[int | None] | None = None,
                   orders: int = 5) -> dict:
    """Per target that every member has finished: each member's and the ensemble's rows."""
    steps = list(steps) if steps else [None] * len(members)
    roots = [run_root("loco", m, _recipe(m, s, None)) for m, s in zip(members, steps, strict=True)]
    targets: dict[str, dict] = {}
    for target in LOCO_TARGETS:
        paths = [root / target / "scores.pkl" for root in roots]
        if not all(p.exists() for p in paths):
            continue
        runs = []
        for p in paths:
            with open(p, "rb") as fh:
                runs.append(pickle.load(fh))
        rows = {m: evaluate(r["scores"].window_logits, r, orders)
                for m, r in zip(members, runs, strict=True)}
        rows["ensemble"] = evaluate(mean_logits(runs), runs[0], orders)
        targets[target] = rows
    names = [*members, "ensemble"]
    mean = {n: {"ua": float(np.mean([t[n]["ua"] for t in targets.values()])),
                "ua_prior": float(np.mean([t[n]["ua_prior"] for t in targets.values()]))}
            for n in names} if targets else {}
    return {"members": list(members), "runs": [str(r) for r in roots],
            "protocol": "mean of the members' window logits; leave-one-corpus-out, "
                        f"test = the held-out corpus's clips in {list(SHARED4)}",
            "targets": targets, "mean": mean}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: print and write the table."""
    ap = argparse.ArgumentParser(prog="python -m streamser.training.ensemble_eval",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--members", nargs="+", required=True, help="recipes (two or more)")
    ap.add_argument("--steps", nargs="+", type=int, default=None,
                    help="each member's steps (default: the recipe's)")
    ap.add_argument("--orders", type=int, default=5, help="random clip orders per speaker")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if len(args.members) < 2:
        ap.error(f"--members needs two or more recipes, got {args.members}")
    if args.steps and len(args.steps) != len(args.members):
        ap.error(f"--steps gives {len(args.steps)} values for {len(args.members)} members")
    result = ensemble_table(args.members, args.steps, args.orders)
    if not result["targets"]:
        print(f"no target has finished leave-one-corpus-out runs of every member: "
              f"{result['runs']}")
        return 1
    for target, rows in result["targets"].items():
        print(f"{target:8s} " + " | ".join(
            f"{n} {r['ua'] * 100:.1f} -> {r['ua_prior'] * 100:.1f}"
            f" ({r['most_predicted']} {r['most_predicted_share'] * 100:.0f} %)"
            for n, r in rows.items()))
    print("mean     " + " | ".join(f"{n} {m['ua'] * 100:.1f} -> {m['ua_prior'] * 100:.1f}"
                                   for n, m in result["mean"].items()))
    out = args.json or RESULTS / f"ensemble-{'+'.join(args.members)}.json"
    out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
