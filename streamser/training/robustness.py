"""Robustness table: the same unseen clips through other recording chains.

For an exported ONNX model (the product contract, so any model version can be compared) and the
clips of RAVDESS actors 19 and 20 (never in any shipped model's training data), each condition
changes only the chain: noise of three kinds at 30 / 20 / 10 dB SNR (against active speech, over
the whole clip, pauses included), a spectral tilt of +-10 dB, the telephone band 300-3400 Hz,
simulated rooms of RT60 0.3 / 0.6 s, and a real Opus round trip at about 12 kbit/s. Per condition:
UA and WA (8 classes), the share of clips whose decision differs from the clean clip's
("flipped"), and the most predicted class with its share. Clips are scored as the live engine
does (engine windows, mean of window probabilities).

Babble noise is the sum of three TESS utterances (two speakers never in the test set); white
and pink noise are synthetic. The Opus and babble conditions are chains that model 2's training
augmentation never produced.

    python -m streamser.training.robustness models/streamser-facenet-s-2.2.0.onnx [--json out]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from streamser.contract import INPUT_NAME, parse_metadata
from streamser.training import metrics
from streamser.training.channel import (
    add_noise_at_snr,
    band_limit,
    codec_roundtrip,
    coloured_noise,
    reverberate,
    room_impulse_response,
    spectral_tilt,
)
from streamser.training.data import engine_windows
from streamser.training.evaluate import onnx_session

__all__ = ["CONDITIONS", "babble_sources", "conditions", "robustness_table", "score_clips"]

#: Opus compression level giving ~12 kbit/s on speech (12.7-13.3 kbit/s file size with Ogg).
OPUS_12K_LEVEL = 0.965

Chain = Callable[[np.ndarray, int], np.ndarray]


def _t(audio: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(audio, dtype=np.float32)).unsqueeze(0)


def _noise(kind: str, snr_db: float, babble: list[np.ndarray]) -> Chain:
    def apply(audio: np.ndarray, seed: int) -> np.ndarray:
        g = torch.Generator().manual_seed(seed)
        n = len(audio)
        if kind == "babble":
            rng = np.random.default_rng(seed)
            mix = np.zeros(n, dtype=np.float32)
            for i in rng.choice(len(babble), 3, replace=False):
                b = np.resize(babble[i], n)  # repeats a short utterance
                mix += b / (np.sqrt(np.mean(b**2)) + 1e-9)
            noise = _t(mix)
        else:
            noise = coloured_noise(1, n, torch.tensor([0.0 if kind == "white" else 1.0]), g)
        return add_noise_at_snr(_t(audio), noise, torch.tensor([snr_db]))[0].numpy()

    return apply


def _room(rt60_s: float) -> Chain:
    def apply(audio: np.ndarray, seed: int) -> np.ndarray:
        rir = room_impulse_response(rt60_s, 3.0, torch.Generator().manual_seed(seed))
        return reverberate(_t(audio), [rir])[0].numpy()

    return apply


def conditions(babble: list[np.ndarray]) -> dict[str, Chain]:
    """Condition name -> chain ``(audio, seed) -> audio``, in table order."""
    out: dict[str, Chain] = {"clean": lambda a, s: a}
    for kind in ("pink", "white", "babble"):
        for snr in (30, 20, 10):
            out[f"{kind} {snr} dB"] = _noise(kind, snr, babble)
    out["tilt -10 dB"] = lambda a, s: spectral_tilt(_t(a), torch.tensor([-10.0]))[0].numpy()
    out["tilt +10 dB"] = lambda a, s: spectral_tilt(_t(a), torch.tensor([10.0]))[0].numpy()
    out["telephone 300-3400 Hz"] = lambda a, s: band_limit(
        _t(a), torch.tensor([300.0]), torch.tensor([3400.0]), order=6)[0].numpy()
    for rt in (0.3, 0.6):
        out[f"reverb RT60 {rt} s"] = _room(rt)
    out["opus 12 kbit/s"] = lambda a, s: codec_roundtrip(a, "opus", OPUS_12K_LEVEL)
    return out


CONDITIONS = tuple(conditions([np.zeros(10, dtype=np.float32)] * 3))


def babble_sources() -> list[np.ndarray]:
    """The 60 TESS clips (a fixed draw) that the babble conditions mix three at a time."""
    from streamser.training.experiments import load_clips

    _, t_audio = load_clips("tess")
    return [t_audio[i] for i in np.random.default_rng(0).choice(len(t_audio), 60, False)]


def score_clips(model: Path | str, clips: Sequence[np.ndarray]) -> tuple[np.ndarray, tuple]:
    """``([n_clips, n_labels] mean window probabilities, labels)`` from an ONNX model."""
    sess = onnx_session(model, threads=1)
    spec = parse_metadata(sess.get_modelmeta().custom_metadata_map, str(model))
    probs = [
        sess.run(None, {INPUT_NAME: engine_windows(c, spec.window_samples, spec.hop_samples)})[0]
        .mean(axis=0) for c in clips
    ]
    return np.stack(probs), tuple(spec.labels)


def robustness_table(model: Path | str, speakers: Sequence[str] = ("19", "20")) -> dict:
    """The table for ``model`` on RAVDESS ``speakers`` (see the module docstring)."""
    from streamser.training.experiments import load_clips

    r_utts, r_audio = load_clips("ravdess")
    wanted = {f"ravdess:{s}" for s in speakers}
    sel = [i for i, u in enumerate(r_utts) if u.speaker in wanted]
    clips = [r_audio[i] for i in sel]
    babble = babble_sources()
    rows: dict[str, dict] = {}
    clean_pred = None
    for name, chain in conditions(babble).items():
        changed = [chain(c, 1000 + i).astype(np.float32) for i, c in enumerate(clips)]
        probs, labels = score_clips(model, changed)
        y = np.array([labels.index(r_utts[i].label) for i in sel])
        pred = probs.argmax(1)
        if clean_pred is None:
            clean_pred = pred
        share = np.bincount(pred, minlength=len(labels)) / len(pred)
        rows[name] = {
            "ua": metrics.unweighted_accuracy(y, pred, len(labels)),
            "wa": metrics.weighted_accuracy(y, pred),
            "flipped": float(np.mean(pred != clean_pred)),
            "most_predicted": labels[int(share.argmax())],
            "most_predicted_share": float(share.max()),
            "called_sad": int(np.sum(pred == labels.index("sad"))) if "sad" in labels else None,
        }
    return {"model": str(model), "speakers": sorted(wanted), "n_clips": len(clips),
            "conditions": rows}


def main(argv: Sequence[str] | None = None) -> int:
    """Print (and optionally write) the robustness table of one or more ONNX models."""
    ap = argparse.ArgumentParser(prog="python -m streamser.training.robustness")
    ap.add_argument("models", nargs="+")
    ap.add_argument("--json", type=Path, default=None, help="write all tables to this file")
    args = ap.parse_args(argv)
    tables = [robustness_table(m) for m in args.models]
    for t in tables:
        print(f"\n{t['model']} ({t['n_clips']} clips of {', '.join(t['speakers'])})")
        print(f"{'condition':24s} {'UA':>6s} {'WA':>6s} {'flipped':>8s}  most predicted")
        for name, r in t["conditions"].items():
            print(f"{name:24s} {r['ua']:6.3f} {r['wa']:6.3f} {r['flipped']:8.2f}  "
                  f"{r['most_predicted']} {r['most_predicted_share']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(tables, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
