"""How far each recording chain moves the front end's features, per recipe front end.

    python -m streamser.training.feature_shift --recipes v9c v9f v9n [--json out.json]

For RAVDESS actors 19-20 (the robustness table's clips; the first ``--clips`` of them), each
clip gets the faint floor the training chain puts into digital silence (white noise 100 dB
below full scale), is cut into 2 s windows at a 0.5 s hop (fixed positions, so the same
windows are compared), and goes through each condition of
:func:`streamser.training.robustness.conditions`. The figure per condition is the mean absolute
difference between the standardised log-mel of the clean and the changed windows (the model's
input; 0 = the chain is invisible to the network). No model is run: it measures the front end
alone, so it says which front end leaves the network less to absorb, not which one classifies
better.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from streamser.training.frontend import FrontEndConfig, LogMel

__all__ = ["feature_shift"]

WINDOW = 32_000  # samples (2 s at 16 kHz)
HOP = 8_000  # samples (0.5 s)


def _windows(audio: np.ndarray) -> np.ndarray:
    """``[n, WINDOW]`` windows at fixed positions (zero-padded to one window if shorter)."""
    x = np.pad(audio, (0, max(0, WINDOW - len(audio))))
    starts = range(0, len(x) - WINDOW + 1, HOP)
    return np.stack([x[s : s + WINDOW] for s in starts]).astype(np.float32)


def feature_shift(fronts: dict[str, FrontEndConfig], n_clips: int = 60) -> dict:
    """``{front end name: {condition: mean |clean - changed| of the features}}``."""
    from streamser.training.experiments import load_clips
    from streamser.training.robustness import babble_sources, conditions

    utts, audio = load_clips("ravdess")
    sel = [i for i, u in enumerate(utts) if u.speaker in ("ravdess:19", "ravdess:20")][:n_clips]
    chains = {k: v for k, v in conditions(babble_sources()).items() if k != "clean"}
    rng = np.random.default_rng(1)
    clean = [audio[i] + 1e-5 * rng.standard_normal(len(audio[i])).astype(np.float32)
             for i in sel]
    changed = {name: [chain(c, 1000 + j).astype(np.float32)[: len(c)]
                      for j, c in enumerate(clean)] for name, chain in chains.items()}
    out: dict[str, dict[str, float]] = {}
    with torch.no_grad():
        for fname, cfg in fronts.items():
            fe = LogMel(cfg)

            def feats(a: np.ndarray, fe: LogMel = fe) -> torch.Tensor:
                return fe(torch.from_numpy(_windows(a)))

            ref = [feats(c) for c in clean]
            out[fname] = {name: round(float(np.mean([
                (r - feats(b)).abs().mean().item() for r, b in zip(ref, clips, strict=True)])), 4)
                for name, clips in changed.items()}
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Print (and optionally write) the feature shift of each recipe's front end."""
    from streamser.training.loco import RECIPES

    ap = argparse.ArgumentParser(prog="python -m streamser.training.feature_shift")
    ap.add_argument("--recipes", nargs="+", default=["v9c", "v9f", "v9n"], choices=RECIPES)
    ap.add_argument("--clips", type=int, default=60, help="actors 19-20 clips to use")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    table = feature_shift({r: RECIPES[r].frontend for r in args.recipes}, args.clips)
    names = list(next(iter(table.values())))
    print(f"{'condition':24s} " + " ".join(f"{r:>8s}" for r in table))
    for n in names:
        print(f"{n:24s} " + " ".join(f"{table[r][n]:8.3f}" for r in table))
    if args.json:
        args.json.write_text(json.dumps({"clips": args.clips, "shift": table}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
