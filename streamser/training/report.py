"""Markdown tables for docs/model/REPORT.md, built from the results JSON files (no torch).

``python -m streamser.training.report`` prints the tables (CV per fold and summary, calibration,
speaker normalisation, cross-corpus, ablations, baseline) from ``docs/model/results/*.json`` and
``docs/model/baseline.json``, so every number in the report is traceable to a results file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

__all__ = ["tables"]

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


if __name__ == "__main__":
    sys.stdout.write(tables() + "\n")
