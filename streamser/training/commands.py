"""``streamser train | evaluate | export`` subcommands (registered by :mod:`streamser.cli`).

This module imports neither torch nor numpy at import time: the runtime CLI stays light and a
user without the ``train`` extra gets one clear line and exit code 2.

Examples (runs write ``runs/`` and ``docs/model/results/``)::

    streamser train --recipe full --cv                  # 5-fold speaker-independent CV
    streamser train --recipe ce_only --cv --folds 0 --epochs 5   # one ablation row
    streamser train --cross-corpus --epochs 5           # RAVDESS<->TESS
    streamser train --recipe full --final               # shipped model (no actors 19/20)
    streamser export runs/final-full-e12/model.pt models/streamser-facenet-1.0.0.onnx \
        --temperature-from docs/model/results/cv-full-e12.json
    streamser evaluate models/streamser-facenet-1.0.0.onnx --corpus ravdess --speakers 19 20
"""

from __future__ import annotations

import argparse
import logging
import sys

__all__ = ["register"]

TRAIN_EXTRA = "training needs the train extra: pip install -e '.[train]'"


def _have_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        print(TRAIN_EXTRA, file=sys.stderr)
        return False
    return True


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")


def cmd_train(args: argparse.Namespace) -> int:
    """Run CV, cross-corpus or the final training of a named recipe."""
    if not _have_torch():
        return 2
    _logging()
    from dataclasses import replace

    from streamser.training import experiments as ex

    if args.threads is not None:
        for name, (cfg, extra, src) in list(ex.RECIPES.items()):
            ex.RECIPES[name] = (replace(cfg, threads=args.threads), extra, src)
    if args.recipe not in ex.RECIPES:
        print(f"unknown recipe {args.recipe!r}; choose from {', '.join(ex.RECIPES)}",
              file=sys.stderr)
        return 2
    progress = not args.no_progress
    if args.cross_corpus:
        ex.run_cross_corpus(epochs=args.epochs, progress=progress,
                            augment=args.recipe != "no_aug")
    if args.cv:
        ex.run_cv(args.recipe, folds=args.folds, epochs=args.epochs, progress=progress)
    if args.final:
        path = ex.run_final(args.recipe, epochs=args.epochs, progress=progress)
        print(path)
    if not (args.cv or args.final or args.cross_corpus):
        print("nothing to do: pass --cv, --final and/or --cross-corpus", file=sys.stderr)
        return 2
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Export a checkpoint to an ONNX file that meets the streamser model contract."""
    if not _have_torch():
        return 2
    _logging()
    from streamser.training.export import export_checkpoint

    path = export_checkpoint(args.checkpoint, args.output, version=args.version,
                             temperature=args.temperature,
                             temperature_from=args.temperature_from, hop_s=args.hop_s)
    print(path)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Score an exported ONNX model on a corpus (optionally some speakers), engine-style."""
    if not _have_torch():
        return 2
    _logging()
    import json

    from streamser.training.evaluate import evaluate_onnx

    result = evaluate_onnx(args.model, args.corpus, speakers=args.speakers, root=args.root)
    print(json.dumps(result, indent=1))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train``, ``evaluate`` and ``export`` subcommands; handlers return exit codes."""
    p = subparsers.add_parser("train", help="train / cross-validate a model (needs [train])")
    p.add_argument("--recipe", default="full", help="named recipe (see experiments.RECIPES)")
    p.add_argument("--cv", action="store_true", help="5-fold speaker-independent CV on RAVDESS")
    p.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--final", action="store_true",
                   help="train the shipped model on everything except RAVDESS actors 19, 20")
    p.add_argument("--cross-corpus", action="store_true",
                   help="RAVDESS<->TESS runs (with --recipe no_aug: the augmentation-free ones)")
    p.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default 2)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(handler=cmd_train)

    p = subparsers.add_parser("export", help="export a checkpoint to contract ONNX")
    p.add_argument("checkpoint")
    p.add_argument("output")
    p.add_argument("--version", default=None, help="model_version metadata")
    p.add_argument("--temperature", type=float, default=None)
    p.add_argument("--temperature-from", default=None,
                   help="CV results JSON whose temperature_all_folds to bake in")
    p.add_argument("--hop-s", type=float, default=0.5)
    p.set_defaults(handler=cmd_export)

    p = subparsers.add_parser("evaluate", help="score an ONNX model on a corpus")
    p.add_argument("model")
    p.add_argument("--corpus", default="ravdess")
    p.add_argument("--root", default=None, help="corpus folder or manifest CSV")
    p.add_argument("--speakers", nargs="*", default=None,
                   help="speaker ids to test on (e.g. 19 20 or ravdess:19)")
    p.set_defaults(handler=cmd_evaluate)
