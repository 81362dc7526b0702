"""Export a recipe's leave-one-corpus-out checkpoints as ONNX models that calibration can use.

    python -m streamser.training.calib_loco runs/loco-v2-s1500 --out /tmp/loco-onnx
    python -m streamser.training.calib_eval --loco nemo=/tmp/loco-onnx/nemo.onnx \\
        ravdess=/tmp/loco-onnx/ravdess.onnx --out-dir docs/calibration

Each ``<runs>/<target>/model.pt`` (a model trained on every corpus but ``target``) becomes
``<out>/<target>.onnx`` with the ``speaker_norm`` metadata calibration needs: the model's head
and the mean window embedding of 200 clips of corpora it *was* trained on (never the held-out
one, never RAVDESS actors 19-20). Needs the train extra (torch); one torch thread.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from streamser.training.nets import SERModel

__all__ = ["export_loco", "main", "training_ref_mean"]

_REFERENCE = ("ravdess", "tess", "nemo")
_DEMO = ("ravdess:19", "ravdess:20")


def training_ref_mean(model: SERModel, target: str, window: int, hop: int,
                      n: int = 200) -> np.ndarray:
    """The mean window embedding [D] (the model's own, no reference) of ``n`` random labelled
    clips of two corpora a leave-one-corpus-out model *was* trained on (never ``target``,
    never RAVDESS actors 19-20): the ``ref_mean`` its calibration profiles shift towards.
    ``window`` and ``hop`` in samples."""
    from streamser.training.loco import _pool
    from streamser.training.train import predict_clips

    corpora = [c for c in _REFERENCE if c != target][:2]
    utts, audio = _pool(corpora, lambda u: u.label is not None and u.speaker not in _DEMO)
    idx = np.random.default_rng(0).choice(len(utts), size=min(n, len(utts)), replace=False)
    scores = predict_clips(model, [audio[i] for i in idx], (), window, hop)
    return np.asarray(np.concatenate(scores.window_emb).mean(axis=0), dtype=np.float64)


def export_loco(checkpoint: Path, target: str, out: Path, n_ref: int = 200,
                temperature: float = 1.0) -> Path:
    """Write ``out`` from the checkpoint of the model trained without corpus ``target``.

    ``temperature`` is baked into ``probs`` as in the shipped export, so the adaptations see
    the probabilities the shipped model would give.
    """
    import torch

    from streamser.training.export import export_checkpoint
    from streamser.training.train import TrainConfig, load_checkpoint

    torch.set_num_threads(1)
    model, state = load_checkpoint(checkpoint)
    cfg = TrainConfig.from_json(state["config"])
    reference = {
        "ref_mean": training_ref_mean(model, target, cfg.window, cfg.hop,
                                      n_ref).round(6).tolist(),
        "head_weight": model.head.weight.detach().numpy().round(6).tolist(),
        "head_bias": model.head.bias.detach().numpy().round(6).tolist(),
        "scale": model.cfg.scale,
    }
    return export_checkpoint(checkpoint, out, version=f"{checkpoint.parent.parent.name}-"
                             f"without-{target}", temperature=temperature,
                             extra={"speaker_norm": json.dumps(reference),
                                    "training_data": f"every corpus but {target} (LOCO)"})


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    ap = argparse.ArgumentParser(prog="python -m streamser.training.calib_loco",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", type=Path, help="a LOCO run folder with <target>/model.pt")
    ap.add_argument("--out", type=Path, required=True, help="folder for <target>.onnx")
    ap.add_argument("--temperature", type=float, default=1.0,
                    help="bake this temperature into probs (the shipped model's, e.g. 2.12)")
    args = ap.parse_args(argv)
    found = sorted(args.runs.glob("*/model.pt"))
    if not found:
        print(f"no <target>/model.pt under {args.runs}", file=sys.stderr)
        return 2
    for checkpoint in found:
        target = checkpoint.parent.name
        path = export_loco(checkpoint, target, args.out / f"{target}.onnx",
                           temperature=args.temperature)
        print(f"{target}={path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
