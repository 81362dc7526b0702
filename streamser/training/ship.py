"""Export the final checkpoint as the shipped model and measure what the model card states.

``python -m streamser.training.ship runs/final-full-e12/model.pt --version 1.0.0`` writes
``models/streamser-facenet-s-<version>.onnx`` (removing any other ``.onnx`` there, so exactly one
remains), with the CV temperature baked in and the metadata the card quotes, then writes
``docs/model/results/shipped.json``: onnxruntime latency per 2 s window (1 and 2 threads) and the
engine-style accuracy on RAVDESS actors 19 and 20, who were never in its training data.

Model 2 (``--loco-recipe v2``): the temperature and the ``uncertain_below`` threshold are
fitted on that recipe's leave-one-corpus-out predictions (every clip scored by a model that
never heard its corpus), the metrics come from ``loco-<recipe>.json`` and ``cv2-<recipe>.json``,
and the speaker-normalisation reference from the whole training pool.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

__all__ = ["main"]

REPO = Path(__file__).resolve().parents[2]


def _summary(results: Path, cv: Path) -> dict:
    out: dict = {}
    if cv.exists():
        r = json.loads(cv.read_text())
        s = r["summary"]
        out["cv"] = r["name"]
        out["ravdess_5fold_speaker_independent"] = {
            k: round(s[k]["mean"], 4) for k in ("ua", "wa", "ece", "ece_calibrated", "ua_spknorm")
            if k in s} | {"ua_std": round(s["ua"]["std"], 4), "folds": s["ua"]["n"]}
    xc = results / "cross_corpus.json"
    if xc.exists():
        out["cross_corpus_ua"] = {k: round(v["ua"], 4)
                                  for k, v in json.loads(xc.read_text())["runs"].items()}
    return out


LICENSE_V2 = (
    "Weights: non-commercial use only, with attribution (CC BY-NC-SA 4.0 at least): trained on "
    "RAVDESS (CC BY-NC-SA 4.0), TESS (CC BY-NC-ND 4.0), nEMO (CC BY-NC-SA 4.0), ASED (no licence "
    "stated; cite Retta et al. 2022) and BAVED (no licence stated; non-commercial); noise from "
    "the Indian EmoSpeech Command Dataset (CC BY-NC-SA 4.0). Code: MIT."
)


def _summary_v2(results: Path, recipe: str) -> dict:
    out: dict = {}
    loco = results / f"loco-{recipe}.json"
    if loco.exists():
        r = json.loads(loco.read_text())
        out["leave_one_corpus_out_ua_4class"] = {
            k: round(v["ua"], 4) for k, v in r["targets"].items()} | {
            "mean": round(r["mean_ua"], 4)}
    cv = results / f"cv2-{recipe}.json"
    if cv.exists():
        r = json.loads(cv.read_text())
        out["ravdess_5fold_speaker_independent"] = {
            "ua": round(r["mean_ua"], 4), "wa": round(r["mean_wa"], 4), "folds": len(r["folds"])}
    return out


def main(argv: list[str] | None = None) -> int:
    """Export, time and spot-check the shipped model; returns an exit code."""
    parser = argparse.ArgumentParser(prog="python -m streamser.training.ship")
    parser.add_argument("checkpoint")
    parser.add_argument("--version", required=True)
    parser.add_argument("--recipe", default="full")
    parser.add_argument("--cv-json", default=str(REPO / "docs/model/results/cv-full-e12.json"))
    parser.add_argument("--training-data", default="RAVDESS speech actors 01-18 (1080 clips) + "
                        "TESS (2798 clips); RAVDESS actors 19-20 excluded (demo voices)")
    parser.add_argument("--no-speaker-norm", action="store_true")
    parser.add_argument("--temperature", type=float, default=None,
                        help="override the CV temperature (e.g. 1.0 when it did not help)")
    parser.add_argument("--loco-recipe", default=None,
                        help="model 2: calibrate on this recipe's leave-one-corpus-out runs")
    parser.add_argument("--loco-steps", type=int, default=None)
    parser.add_argument("--uncertain-target", type=float, default=None,
                        help="accuracy a shown label must reach on unseen corpora "
                             "(default: loco.UNCERTAIN_TARGET)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    from streamser.training.evaluate import evaluate_onnx, time_onnx
    from streamser.training.experiments import final_reference
    from streamser.training.export import export_checkpoint

    results = REPO / "docs" / "model" / "results"
    cv_json = Path(args.cv_json)
    if args.loco_recipe:
        from streamser.training.loco import (
            UNCERTAIN_TARGET,
            pool_reference,
            uncertainty_from_loco,
        )

        unc = uncertainty_from_loco(args.loco_recipe, args.loco_steps,
                                    args.uncertain_target or UNCERTAIN_TARGET)
        summary = _summary_v2(results, args.loco_recipe) | {"uncertainty": unc}
        args.temperature = unc["temperature"]
        extra = {
            "training_data": args.training_data,
            "metrics": json.dumps(summary),
            "recipe": args.loco_recipe,
            "license": LICENSE_V2,
        }
        if unc["uncertain_below"] is not None:  # None: no confidence is right often enough
            extra["uncertain_below"] = f"{unc['uncertain_below']:.4f}"
        if not args.no_speaker_norm:
            extra["speaker_norm"] = json.dumps(pool_reference(args.checkpoint))
    else:
        extra = {
            "training_data": args.training_data,
            "metrics": json.dumps(_summary(results, cv_json)),
            "recipe": args.recipe,
        }
        if not args.no_speaker_norm:
            extra["speaker_norm"] = json.dumps(final_reference(args.checkpoint, args.recipe))
    out = REPO / "models" / f"streamser-facenet-s-{args.version}.onnx"
    for old in (REPO / "models").glob("*.onnx"):
        if old != out:
            old.unlink()
    path = export_checkpoint(args.checkpoint, out, version=f"facenet-s-{args.version}",
                             temperature=args.temperature,
                             temperature_from=cv_json if cv_json.exists() else None,
                             extra=extra)
    shipped = {
        "model": path.name, "bytes": path.stat().st_size, "checkpoint": args.checkpoint,
        "latency": [time_onnx(path, threads) for threads in (1, 2)],
        "demo_actors_19_20": evaluate_onnx(path, "ravdess", speakers=["19", "20"]),
        "metadata_metrics": json.loads(extra["metrics"]),
    }
    results.mkdir(parents=True, exist_ok=True)
    (results / "shipped.json").write_text(json.dumps(shipped, indent=1))
    print(json.dumps({k: v for k, v in shipped.items() if k != "demo_actors_19_20"} |
                     {"ua_19_20": shipped["demo_actors_19_20"]["ua"]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
