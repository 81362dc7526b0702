"""Build assets/demo.flac: ~60 s of RAVDESS actors 19 and 20 across all eight emotions.

The shipped model never trains on these two actors, so the demo shows it on unseen voices.
Writes assets/demo.flac (16 kHz mono FLAC) and assets/demo_cues.csv (start/end seconds, actor,
emotion, source file). Usage: python scripts/make_demo_audio.py [CORPORA_ROOT]
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

EMOTIONS = {1: "neutral", 2: "calm", 3: "happy", 4: "sad", 5: "angry", 6: "fearful",
            7: "disgust", 8: "surprised"}
ORDER = [1, 3, 4, 5, 2, 6, 8, 7]  # a varied walk through the circumplex
RATE = 16_000
PAUSE_S = 0.35


def trim(audio: np.ndarray, floor_db: float = -50.0, margin_s: float = 0.15) -> np.ndarray:
    """Cut leading/trailing silence below ``floor_db`` relative to the clip's peak."""
    frame = 320
    n = len(audio) // frame
    rms = np.sqrt(np.mean(audio[: n * frame].reshape(n, frame) ** 2, axis=1) + 1e-12)
    level = 20 * np.log10(rms / (np.max(np.abs(audio)) + 1e-12))
    loud = np.flatnonzero(level > floor_db)
    if len(loud) == 0:
        return audio
    margin = int(margin_s * RATE)
    return audio[max(0, loud[0] * frame - margin): min(len(audio), (loud[-1] + 1) * frame + margin)]


def main(root: Path) -> None:
    out_dir = Path(__file__).resolve().parent.parent / "assets"
    pieces: list[np.ndarray] = []
    cues: list[tuple[float, float, str, str, str]] = []
    t = 0.0
    # strong intensity, statement 1, all emotions; then normal intensity, statement 2, four more
    plan = [(e, 1 if e == 1 else 2, 1) for e in ORDER] + [(e, 1, 2) for e in (5, 3, 4, 8)]
    for emotion, intensity, statement in plan:
        for actor in (19, 20):
            name = f"03-01-{emotion:02d}-{intensity:02d}-{statement:02d}-01-{actor:02d}.flac"
            audio, rate = sf.read(root / "ravdess" / f"Actor_{actor:02d}" / name, dtype="float32")
            assert rate == RATE and audio.ndim == 1, (name, rate, audio.shape)
            audio = trim(audio)
            cues.append((round(t, 3), round(t + len(audio) / RATE, 3), f"{actor:02d}",
                         EMOTIONS[emotion], name))
            pieces += [audio, np.zeros(int(PAUSE_S * RATE), np.float32)]
            t += len(audio) / RATE + PAUSE_S
    demo = np.concatenate(pieces)
    sf.write(out_dir / "demo.flac", demo, RATE, subtype="PCM_16")
    with (out_dir / "demo_cues.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["start_s", "end_s", "actor", "emotion", "ravdess_file"])
        writer.writerows(cues)
    print(f"wrote {out_dir / 'demo.flac'}: {len(demo) / RATE:.1f} s, {len(cues)} clips")


if __name__ == "__main__":
    default = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora"
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else default)
