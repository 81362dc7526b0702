"""Do a model's embeddings tell apart the voices of a corpus it never heard?

    python -m streamser.training.speaker_probe --target nemo MODEL.pt [MODEL.pt ...] \
        [--random-like MODEL.pt] [--per-speaker 30] [--json out.json]

For ``--per-speaker`` clips of each speaker of ``--target`` (drawn with seed 0), each model
scores the clip as the engine does (2 s windows at its hop) and the clip's embedding is the
mean of its windows' unit embeddings, renormalised. Two figures per model:

- ``nn_accuracy``: leave-one-out nearest neighbour (cosine) speaker identification;
  chance is about one over the number of speakers;
- ``eer``: the equal error rate of same-speaker verification over every pair of clips (0.5 =
  no information).

It checks what a speaker-identity pretraining stage (``TrainConfig.pretrain_speakers``) has
learned before an emotion stage builds on it, against the same architecture with random
weights (``--random-like``) and against emotion models. No emotion label is used.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["clip_embeddings", "speaker_separation"]


def speaker_separation(emb: np.ndarray, speakers: Sequence[str]) -> dict[str, float]:
    """``{"nn_accuracy", "eer"}`` of unit-normalised clip embeddings ``[n, D]``.

    ``nn_accuracy`` is leave-one-out nearest-neighbour speaker identification by cosine
    similarity; ``eer`` the equal error rate of deciding "same speaker" by thresholding the
    similarity of each pair (the threshold where false accepts and false rejects meet).
    """
    who = np.asarray(speakers)
    if len(who) != len(emb) or len(np.unique(who)) < 2:
        raise ValueError(f"need one speaker per embedding and at least two speakers, got "
                         f"{len(emb)} embeddings and {len(np.unique(who))} speakers")
    e = emb / np.linalg.norm(emb, axis=1, keepdims=True).clip(1e-12)
    sim = e @ e.T
    np.fill_diagonal(sim, -np.inf)
    nn = float((who[sim.argmax(axis=1)] == who).mean())
    iu = np.triu_indices(len(e), 1)
    s, same = sim[iu], (who[:, None] == who[None, :])[iu]
    # Thresholds between consecutive sorted similarities: pairs below are called "different".
    same_sorted = same[np.argsort(s)]
    frr = np.concatenate([[0], np.cumsum(same_sorted)]) / max(1, int(same.sum()))
    far = 1.0 - np.concatenate([[0], np.cumsum(~same_sorted)]) / max(1, int((~same).sum()))
    k = int(np.argmin(np.abs(far - frr)))
    return {"nn_accuracy": nn, "eer": float((far[k] + frr[k]) / 2)}


def clip_embeddings(model, clips: Sequence[np.ndarray], window: int, hop: int) -> np.ndarray:
    """``[len(clips), D]``: each clip's mean unit window embedding, as the engine windows it."""
    from streamser.training.train import predict_clips

    scores = predict_clips(model, list(clips), ("x",), window, hop)
    emb = np.stack([w.mean(axis=0) for w in scores.window_emb])
    return emb / np.linalg.norm(emb, axis=1, keepdims=True).clip(1e-12)


def _load(path: str, random: bool):
    import torch

    from streamser.training.nets import SERModel
    from streamser.training.train import TrainConfig, load_checkpoint

    model, state = load_checkpoint(path)
    cfg = TrainConfig.from_json(state["config"])
    if random:
        torch.manual_seed(0)
        model = SERModel(len(state["labels"]), cfg.model, cfg.frontend).eval()
    return model, cfg


def main(argv: Sequence[str] | None = None) -> int:
    """Command line (module docstring)."""
    ap = argparse.ArgumentParser(prog="python -m streamser.training.speaker_probe")
    ap.add_argument("models", nargs="*", help="model.pt files to probe")
    ap.add_argument("--target", required=True, help="corpus whose speakers are probed")
    ap.add_argument("--random-like", help="also probe this model's architecture, random weights")
    ap.add_argument("--per-speaker", type=int, default=30)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    import torch

    from streamser.training.experiments import select_clips

    torch.set_num_threads(1)
    utts, audio = select_clips([args.target], lambda u: True)
    spk = np.array([u.speaker for u in utts])
    rng = np.random.default_rng(0)
    pick = np.concatenate([
        rng.choice(np.flatnonzero(spk == s), size=min(args.per_speaker, int((spk == s).sum())),
                   replace=False) for s in np.unique(spk)])
    clips, who = [audio[i] for i in pick], spk[pick]
    runs = [(f"random weights like {args.random_like}", args.random_like, True)] \
        if args.random_like else []
    runs += [(m, m, False) for m in args.models]
    out: dict[str, dict] = {}
    for name, path, random in runs:
        model, cfg = _load(path, random)
        res = speaker_separation(clip_embeddings(model, clips, cfg.window, cfg.hop), who)
        out[name] = {**res, "speakers": len(np.unique(who)), "clips": len(who)}
        print(f"{args.target} {name}: {out[name]}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"target": args.target, "models": out}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
