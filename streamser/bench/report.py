"""Figures with their targets, from a bench run's sections: terminal table, Markdown block.

The targets are issue 5's (this 2-core CPU, shipped model). A figure whose suite failed or was
skipped has ``value`` None and says why in ``note``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["BEGIN", "END", "Figure", "figures", "markdown_block", "table", "update_markdown"]

BEGIN = "<!-- bench:begin (written by `streamser bench --markdown`; edit outside) -->"
END = "<!-- bench:end -->"


@dataclass(frozen=True)
class Figure:
    """One measured number: ``value`` in ``unit``; ``ok`` None when it has no target."""

    key: str
    label: str
    value: float | None
    unit: str
    target: str | None
    ok: bool | None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def _get(sections: dict[str, Any], path: str) -> Any:
    node: Any = sections
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def figures(sections: dict[str, Any]) -> list[Figure]:
    """Every figure of the report, in table order (missing ones with value None and a note)."""
    hop_s = _get(sections, "e2e.hop_s") or _get(sections, "inference.hop_s") or 0.5
    hop_ms = 1000.0 * float(hop_s)
    peer_backend = _get(sections, "peer.backend") or ""
    rows: list[tuple[str, str, str, str, str | None, Callable[[float], bool] | None]] = [
        ("inference_1t_median_ms", "inference.threads_1.p50",
         "inference per window, 1 thread, median", "ms", "<= 3 ms", lambda v: v <= 3.0),
        ("inference_1t_p95_ms", "inference.threads_1.p95",
         "inference per window, 1 thread, p95", "ms", None, None),
        ("inference_1t_cpu_median_ms", "inference.threads_1_cpu.p50",
         "inference per window, 1 thread, CPU time median (robust to load)", "ms", None, None),
        ("inference_2t_median_ms", "inference.threads_2.p50",
         "inference per window, 2 threads, median", "ms", None, None),
        ("inference_2t_p95_ms", "inference.threads_2.p95",
         "inference per window, 2 threads, p95", "ms", None, None),
        ("rtf_1t", "inference.rtf_1t", f"real-time factor at hop {hop_s:g} s, 1 thread",
         "x", None, None),
        ("analysis_ms_per_frame", "inference.analysis_ms_per_frame",
         "whole analysis per frame (VAD+model+smoothing)", "ms", None, None),
        ("peer_1t_median_ms", "peer.threads_1.peer_ms.p50",
         f"wav2vec2-base peer per window, 1 thread ({peer_backend or 'n/a'})", "ms", None, None),
        ("peer_speedup_1t", "peer.threads_1.speedup", "our speed-up over the peer, 1 thread",
         "x", ">= 80x", lambda v: v >= 80.0),
        ("peer_speedup_1t_cpu", "peer.threads_1.speedup_cpu",
         "our speed-up over the peer, 1 thread, in CPU time", "x", None, None),
        ("peer_speedup_2t", "peer.threads_2.speedup", "our speed-up over the peer, 2 threads",
         "x", None, None),
        ("last_sample_to_client_p50_ms", "e2e.last_sample_to_client_ms.p50",
         "window's last sample captured -> websocket client, p50", "ms", None, None),
        ("last_sample_to_client_p99_ms", "e2e.last_sample_to_client_ms.p99",
         "window's last sample captured -> websocket client, p99", "ms", None, None),
        ("voice_to_frame_p99_ms", "e2e.voice_to_frame_ms.p99",
         "voice-to-frame incl. wait for the window end, p99", "ms",
         f"<= hop + 25 = {hop_ms + 25:g} ms", lambda v: v <= hop_ms + 25.0),
        ("dropped_blocks", "e2e.dropped_blocks", "capture blocks dropped (end to end run)",
         "blocks", "0", lambda v: v == 0),
        ("streams_per_core", "throughput.streams_per_core",
         "real-time streams sustained per core (best batching)", "streams", None, None),
        ("fanout_subscribers", "fanout.max_subscribers",
         "websocket subscribers at 20 Hz with p99 < 50 ms", "clients", ">= 1500",
         lambda v: v >= 1500),
        ("headless_rss_mb", "startup.rss_mb", "headless analyzer RSS after the run", "MB",
         "<= 250 MB", lambda v: v <= 250.0),
        ("first_frame_s", "startup.first_frame_s", "process start -> first frame", "s",
         "<= 2 s", lambda v: v <= 2.0),
    ]
    out = []
    for key, path, label, unit, target, check in rows:
        section = path.split(".")[0]
        value = _num(_get(sections, path))
        note = ""
        if value is None:
            sec = sections.get(section) or {}
            note = str(sec.get("error") or sec.get("message") or "not measured")
            if section == "peer" and sec.get("status") == "ok":
                note = "1 thread only in --quick"
        ok = None if check is None or value is None else bool(check(value))
        capped = _get(sections, "fanout.largest_step")
        if key == "fanout_subscribers" and value is not None and capped is not None \
                and capped < 1500 and value >= capped:
            ok, note = None, f"steps stopped at {capped} (--quick)"
        out.append(Figure(key, label, value, unit, target, ok, note))
    return out


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "x" and value < 1:
        text = f"{value:.4f}"
    elif abs(value) >= 100 or float(value).is_integer():
        text = f"{value:.0f}"
    else:
        text = f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"
    return f"{text} {unit}" if unit != "x" else f"{text}x"


def _verdict(fig: Figure) -> str:
    if fig.ok is None:
        return fig.note if fig.value is not None else ""
    return "met" if fig.ok else "MISSED"


def table(figs: list[Figure]) -> str:
    """A plain-text table for the terminal."""
    rows = [("figure", "value", "target", "")]
    rows += [(f.label, _fmt(f.value, f.unit) if f.value is not None else f"— ({f.note[:60]})",
              f.target or "", _verdict(f)) for f in figs]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_block(result: dict[str, Any]) -> str:
    """The generated part of docs/benchmarks.md: machine, settings, figures vs targets."""
    m = result["machine"]
    v = m["versions"]
    model = result.get("model", {})
    lines = [
        BEGIN,
        f"Measured {result['finished_utc']} with `{result['command']}` "
        f"({result['mode']} mode, {result['duration_s']:.0f} s).",
        "",
        f"- **Machine**: {m['cpu_model']} ({', '.join(m['cpu_flags'])}), "
        f"{m['cores_usable']} cores usable, {m['memory_mb']:.0f} MB RAM, {m['os']}.",
        f"- **Versions**: Python {v['python']}, onnxruntime {v['onnxruntime']}, numpy "
        f"{v['numpy']}, websockets {v['websockets']}, torch {v.get('torch') or '—'}, "
        f"transformers {v.get('transformers') or '—'}.",
        f"- **Model**: `{model.get('file', '?')}` ({model.get('version', '?')}, "
        f"{model.get('size_mb', '?')} MB, window {model.get('window_s', '?')} s, "
        f"hop {model.get('hop_s', '?')} s).",
        f"- **Load from other processes**: {result['contention']['summary']}",
        "",
        "| figure | value | target | |",
        "| --- | --- | --- | --- |",
    ]
    for f in figures(result["sections"]):
        value = _fmt(f.value, f.unit) if f.value is not None else f"— ({f.note})"
        lines.append(f"| {f.label} | {value} | {f.target or ''} | {_verdict(f)} |")
    lines += ["", "Settings per suite (from the JSON):", ""]
    lines += [f"- {name}: {text}" for name, text in result.get("settings", {}).items()]
    lines.append(END)
    return "\n".join(lines)


def update_markdown(path: Path, result: dict[str, Any]) -> None:
    """Replace the block between :data:`BEGIN` and :data:`END` in ``path`` (append if absent)."""
    block = markdown_block(result)
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n\n"
    begin = text.find(BEGIN)
    end = text.find(END)
    if begin >= 0 and end > begin:
        text = text[:begin] + block + text[end + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")
