"""Markdown tables for docs/model/REPORT.md, built from the results JSON files (no torch).

``python -m streamser.training.report`` prints the tables (CV per fold and summary, calibration,
speaker normalisation, cross-corpus, ablations, baseline) from ``docs/model/results/*.json`` and
``docs/model/baseline.json``, so every number in the report is traceable to a results file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

__all__ = ["model2_tables", "tables"]

DOCS = Path(__file__).resolve().parents[2] / "docs" / "model"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _ms(d: dict, key: str) -> str:
    s = d["summary"][key]
    return f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f}"


def _cv_table(r: dict) -> list[str]:
    lines = [f"**{r['name']}** (recipe `{r['recipe']}`)", "",
             "| fold | test actors | UA % | WA % | ECE | T | ECE after T | UA spk-norm % |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in r["folds"]:
        actors = ", ".join(s.split(":")[1] for s in row.get("test_speakers", [])) or \
            f"{4 * row['fold'] + 1:02d}-{4 * row['fold'] + 4:02d}"
        lines.append(
            f"| {row['fold']} | {actors} | {_pct(row['ua'])} | {_pct(row['wa'])} | "
            f"{row['ece']:.3f} | {row.get('temperature', float('nan')):.2f} | "
            f"{row.get('ece_calibrated', float('nan')):.3f} | {_pct(row['ua_spknorm'])} |")
    s = r["summary"]
    lines.append(
        f"| mean ± std | | {_ms(r, 'ua')} | {_ms(r, 'wa')} | {s['ece']['mean']:.3f} | "
        f"{s.get('temperature', {}).get('mean', float('nan')):.2f} | "
        f"{s.get('ece_calibrated', {}).get('mean', float('nan')):.3f} | {_ms(r, 'ua_spknorm')} |")
    return lines


def tables() -> str:
    """All report tables as one markdown string."""
    out: list[str] = []
    results = {p.stem: json.loads(p.read_text()) for p in sorted((DOCS / "results").glob("*.json"))}
    for name, r in results.items():
        if name.startswith("cv-") and len(r["folds"]) > 1:
            out += [*_cv_table(r), ""]
    ablations = [r for n, r in results.items() if n.startswith("cv-") and len(r["folds"]) < 5]
    if ablations:
        out += ["| run | folds | UA % | WA % | ECE | UA spk-norm % | train s/fold |",
                "| --- | --- | --- | --- | --- | --- | --- |"]
        for r in sorted(ablations, key=lambda r: r["name"]):
            folds = ",".join(str(f["fold"]) for f in r["folds"])
            secs = sum(r["train_seconds"]) / len(r["train_seconds"])
            out.append(f"| {r['name']} | {folds} | {_pct(r['summary']['ua']['mean'])} | "
                       f"{_pct(r['summary']['wa']['mean'])} | {r['summary']['ece']['mean']:.3f} | "
                       f"{_pct(r['summary']['ua_spknorm']['mean'])} | {secs:.0f} |")
        out.append("")
    xc = results.get("cross_corpus")
    if xc:
        out += ["| train → test (7 classes) | UA % | WA % | n test |", "| --- | --- | --- | --- |"]
        for k, v in xc["runs"].items():
            out.append(f"| {k} | {_pct(v['ua'])} | {_pct(v['wa'])} | {v['n_test']} |")
        out.append("")
    base = DOCS / "baseline.json"
    if base.exists():
        b = json.loads(base.read_text())
        out += ["| eGeMAPS + SVM baseline | UA % | WA % |", "| --- | --- | --- |"]
        for k, v in b.get("ravdess_5fold", {}).items():
            out.append(f"| 5-fold {k} | {100 * v['ua']['mean']:.1f} ± {100 * v['ua']['std']:.1f}"
                       f" | {100 * v['wa']['mean']:.1f} ± {100 * v['wa']['std']:.1f} |")
        for k, v in b.get("cross_corpus", {}).items():
            out.append(f"| cross-corpus {k} | {_pct(v['ua'])} | {_pct(v['wa'])} |")
    return "\n".join(out)


#: eGeMAPS + SVM trained on the same pool, leave-one-corpus-out, 4 classes (measured by the
#: issue's author under the same protocol; issue 8).
EGEMAPS_LOCO = {"ravdess": 0.41, "tess": 0.60, "nemo": 0.35, "ased": 0.43}


def model2_tables() -> str:
    """Model 2 tables: leave-one-corpus-out per recipe, RAVDESS CV, robustness per model."""
    res = DOCS / "results"
    out: list[str] = []
    runs = {p.stem[5:]: json.loads(p.read_text()) for p in sorted(res.glob("loco-*.json"))}
    unseen = {p.stem[15:]: json.loads(p.read_text())
              for p in sorted(res.glob("unseen-corpora-*.json"))}
    if runs or unseen:
        targets = ("ravdess", "tess", "nemo", "ased")
        out += ["| model / recipe | " + " | ".join(f"{t} UA (WA)" for t in targets)
                + " | mean UA | worst most-predicted share |",
                "| --- " * (len(targets) + 3) + "|"]
        out.append("| eGeMAPS + SVM, same pool (issue 8) | " + " | ".join(
            _pct(EGEMAPS_LOCO[t]) for t in targets) + f" | {_pct(sum(EGEMAPS_LOCO.values()) / 4)}"
            " | |")
        for name, r in unseen.items():
            cells = [f"{_pct(r['targets'][t]['ua'])} ({_pct(r['targets'][t]['wa'])})"
                     if t in r["targets"] else "seen in training" for t in targets]
            worst = max(v["most_predicted_share"] for v in r["targets"].values())
            out.append(f"| {name} (never saw these corpora) | " + " | ".join(cells)
                       + f" | — | {_pct(worst)} |")
        for name, r in runs.items():
            cells = [f"{_pct(r['targets'][t]['ua'])} ({_pct(r['targets'][t]['wa'])})"
                     if t in r["targets"] else "—" for t in targets]
            mean = _pct(r["mean_ua"]) if len(r["targets"]) == len(targets) else \
                f"({_pct(r['mean_ua'])}, {len(r['targets'])} targets)"
            out.append(f"| `{name}` | " + " | ".join(cells)
                       + f" | {mean} | {_pct(r['max_most_predicted_share'])} |")
        out.append("")
        out += ["| recipe | target | most predicted (share) | ECE | T (other targets) | "
                "ECE after T | per-class recall n/h/s/a % | UA oracle speaker norm (mean / z) | "
                "train s |",
                "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for name, r in runs.items():
            for t, v in r["targets"].items():
                rec = "/".join(f"{100 * x:.0f}" for x in v["recall"].values())
                out.append(
                    f"| `{name}` | {t} | {v['most_predicted']} ({_pct(v['most_predicted_share'])})"
                    f" | {v['ece']:.3f} | {v.get('temperature', float('nan')):.2f} | "
                    f"{v.get('ece_calibrated', float('nan')):.3f} | {rec} | "
                    f"{_pct(v.get('ua_spknorm', float('nan')))} / "
                    f"{_pct(v.get('ua_spkz', float('nan')))} | "
                    f"{v.get('train_seconds') or 0:.0f} |")
        out.append("")
    for p in sorted(res.glob("cv2-*.json")):
        r = json.loads(p.read_text())
        out += [f"**{r['name']}** (RAVDESS 8 classes, whole pool in training)", "",
                "| fold | UA % | WA % | most predicted | train s |",
                "| --- | --- | --- | --- | --- |"]
        for f in r["folds"]:
            out.append(f"| {f['fold']} | {_pct(f['ua'])} | {_pct(f['wa'])} | "
                       f"{f['most_predicted']} ({_pct(f['most_predicted_share'])}) | "
                       f"{f['train_seconds']:.0f} |")
        out += [f"| mean | {_pct(r['mean_ua'])} | {_pct(r['mean_wa'])} | | |", ""]
    tables_ = {p.stem[11:]: json.loads(p.read_text())
               for p in sorted(res.glob("robustness-*.json"))}
    if tables_:
        names = list(tables_)
        head = " | ".join(f"{n}: UA / flipped / most predicted" for n in names)
        out += [f"| condition | {head} |", "| --- " * (len(names) + 1) + "|"]
        first = tables_[names[0]]
        first = first[0] if isinstance(first, list) else first
        for cond in first["conditions"]:
            cells = []
            for n in names:
                t = tables_[n][0] if isinstance(tables_[n], list) else tables_[n]
                c = t["conditions"][cond]
                cells.append(f"{_pct(c['ua'])} / {_pct(c['flipped'])} / {c['most_predicted']} "
                             f"{_pct(c['most_predicted_share'])}")
            out.append(f"| {cond} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write((model2_tables() if "--model2" in sys.argv else tables()) + "\n")
