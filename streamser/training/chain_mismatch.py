"""How differently a profile's reading and a live session are coloured, per enrolment chain.

The analyzer sets a calibration profile aside when its neutral reading and the live voice's
running spectrum differ by more than :data:`~streamser.core.voice_reference.PROFILE_MISMATCH_DB`
(:func:`~streamser.core.voice_reference.reference_mismatch_db`). This measures that distance
with a speaker-relative ONNX model's ``band_mean`` output: for each speaker of a corpus, the
"profile" is the mean over up to 6 neutral clips passed through a recording chain
(:func:`streamser.training.robustness.conditions`), the "session" the mean over up to 40 of the
speaker's clips (4 shared classes) as recorded. Prints the median / min / max per chain.

Usage::

    python -m streamser.training.chain_mismatch models/streamser-facenet-s-2.2.0.onnx --corpora nemo
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from streamser.core.voice_reference import reference_mismatch_db

__all__ = ["CHAINS", "main"]

#: Enrolment chains compared (names of :func:`streamser.training.robustness.conditions`).
CHAINS: tuple[str, ...] = ("clean", "tilt +10 dB", "tilt -10 dB", "pink 20 dB",
                           "reverb RT60 0.3 s", "telephone 300-3400 Hz", "opus 12 kbit/s")


def main(argv: Sequence[str] | None = None) -> int:
    from streamser.model import ModelRunner
    from streamser.training.data import engine_windows
    from streamser.training.experiments import select_clips
    from streamser.training.loco import SHARED4
    from streamser.training.robustness import conditions

    ap = argparse.ArgumentParser(prog="python -m streamser.training.chain_mismatch",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("model", type=Path, help="a speaker-relative ONNX model")
    ap.add_argument("--corpora", nargs="+", default=["nemo"])
    ap.add_argument("--speakers", type=int, default=12, help="per corpus, at most")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    runner = ModelRunner.load(args.model, use_gpu=False)
    spec = runner.spec
    window, hop = round(spec.window_s * spec.sample_rate), round(spec.hop_s * spec.sample_rate)

    def band_means(clip: np.ndarray) -> np.ndarray:
        bm = runner.predict(engine_windows(clip, window, hop).astype(np.float32)).band_mean
        if bm is None:
            raise SystemExit(f"{args.model} has no band_mean output: not speaker-relative")
        return np.asarray(bm)

    chains = conditions([np.zeros(spec.sample_rate, np.float32)] * 3)
    result: dict[str, dict[str, dict[str, float]]] = {}
    for corpus in args.corpora:
        utts, audio = select_clips([corpus], lambda u: u.label in SHARED4)
        by_speaker: dict[str, list[tuple[str, np.ndarray]]] = defaultdict(list)
        for u, a in zip(utts, audio, strict=True):
            by_speaker[u.speaker].append((u.label or "", a))
        dist: dict[str, list[float]] = defaultdict(list)
        for items in list(by_speaker.values())[: args.speakers]:
            neutral = [a for label, a in items if label == "neutral"][:6]
            if not neutral:
                continue
            session = np.concatenate([band_means(a) for _, a in items[:40]]).mean(axis=0)
            for name in CHAINS:
                profile = np.concatenate([band_means(chains[name](a, 0).astype(np.float32))
                                          for a in neutral]).mean(axis=0)
                dist[name].append(reference_mismatch_db(profile, session))
        result[corpus] = {name: {"median": float(np.median(v)), "min": float(np.min(v)),
                                 "max": float(np.max(v)), "speakers": len(v)}
                          for name, v in dist.items()}
        for name, row in result[corpus].items():
            print(f"{corpus} {name:24s} median {row['median']:5.2f}  min {row['min']:5.2f}  "
                  f"max {row['max']:5.2f} dB  ({row['speakers']} speakers)", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"model": str(args.model), "corpora": result}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
