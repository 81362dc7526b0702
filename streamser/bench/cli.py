"""``streamser bench [--quick] [--json out.json] [--markdown docs/benchmarks.md]``.

Runs the suites in order (inference, peer, end to end, throughput, fan-out, start-up), each
bounded in time and isolated: one failing suite is reported and the others still run. Prints a
table, and writes the full JSON (machine, settings, raw results, figures) and/or the figures
block of a Markdown report. Exit code 0 when every suite produced its figures (a skipped peer
counts as produced), 1 when a suite failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["SUITES", "register", "run_bench"]

SUITES = ("inference", "peer", "e2e", "throughput", "fanout", "startup")


def register(subparsers: Any) -> None:
    """Add the ``bench`` subcommand to the ``streamser`` parser."""
    p = subparsers.add_parser(
        "bench", help="measure latency, throughput, fan-out, memory and start-up on this machine",
        description="Benchmark the shipped model and the live pipeline on this machine.")
    p.add_argument("--quick", action="store_true",
                   help="smaller counts and durations (under a minute; for CI)")
    p.add_argument("--json", type=Path, metavar="FILE", help="write all results as JSON")
    p.add_argument("--markdown", type=Path, metavar="FILE",
                   help="update the generated figures block of this report "
                        "(e.g. docs/benchmarks.md)")
    p.add_argument("--model", type=Path,
                   help="ONNX model (default: $STREAMSER_MODEL, else the newest shipped model)")
    p.add_argument("--only", metavar="SUITES",
                   help=f"comma-separated subset of: {','.join(SUITES)}")
    p.add_argument("--peer-backend", choices=("auto", "onnx", "torch"),
                   help="how to run the wav2vec2 peer (default: onnx; auto in --quick: the "
                        "cached ONNX export if there is one, else torch eager)")
    p.add_argument("--all-outputs", action="store_true",
                   help="run e2e and start-up with every output on (websocket + page, LSL, "
                        "OSC, frame and audio recorders)")
    p.set_defaults(handler=_handle)


def _say(line: str) -> None:
    print(f"bench: {line}", file=sys.stderr, flush=True)


def _model_info(path: Path) -> dict[str, Any]:
    from streamser.model import ModelRunner

    runner = ModelRunner.load(path, threads=1, use_gpu=False)
    spec = runner.spec
    return {"path": str(path), "file": path.name, "version": spec.model_version,
            "size_mb": round(path.stat().st_size / 1e6, 2), "labels": list(spec.labels),
            "window_s": spec.window_s, "hop_s": spec.hop_s,
            "live_hop_s": min(spec.hop_s, 0.5)}


def _settings(quick: bool, sections: dict[str, Any]) -> dict[str, str]:
    e2e = sections.get("e2e", {})
    tp = sections.get("throughput", {})
    fo = sections.get("fanout", {})
    st = sections.get("startup", {})
    peer = sections.get("peer", {})
    inf = sections.get("inference", {})
    return {
        "inference": f"onnxruntime CPU, intra-op threads 1 and 2, batch 1, {inf.get('runs')} "
                     "timed runs after 10 warm-up, real speech windows from assets/demo.flac",
        "peer": (f"{peer.get('config')}; {peer.get('params_m')} M parameters; backend "
                 f"{peer.get('backend')}; {peer.get('runs')} peer runs interleaved with 5 of "
                 "ours each, same window and threads") if peer.get("status") == "ok"
        else str(peer.get("message") or peer.get("error") or "not run"),
        "e2e": f"{e2e.get('path')} ({e2e.get('source')}), hop {e2e.get('hop_s')} s, "
               f"{e2e.get('seconds')} s of speech, capture blocks "
               f"{_get_p(e2e, 'block_ms', 'p50')} ms, 1 onnxruntime thread, websocket client "
               "thread in the same process (loopback)",
        "throughput": f"streams in lock-step, {tp.get('hops_per_trial')} hops per trial at hop "
                      f"{tp.get('hop_s')} s, 32 ms blocks, Conditioner + Analyzer per stream; "
                      f"best: batch {_get_p(tp, 'best', 'batch')}, "
                      f"{_get_p(tp, 'best', 'threads')} thread(s)",
        "fanout": f"real WebSocketServer in its own process, {fo.get('rate_hz')} frames/s of "
                  f"8-label frames, clients in processes of up to {fo.get('per_client_process')} "
                  f"connections, {fo.get('seconds_per_step')} s measured per step",
        "startup": f"`{st.get('command')}`, RSS after {st.get('seconds')} s",
        "mode": "quick" if quick else "full",
    }


def _get_p(d: dict[str, Any], a: str, b: str) -> Any:
    inner = d.get(a)
    return inner.get(b) if isinstance(inner, dict) else None


def _contention(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> dict[str, Any]:
    seen = {p["pid"]: p for p in before + after}
    heavy = sorted(seen.values(), key=lambda p: -p["cpu_percent"])
    if heavy:
        summary = "**yes** — " + "; ".join(
            f"`{p['cmdline'][:70]}` {p['cpu_percent']:.0f} %" for p in heavy[:4])
        summary += " (CPU % of one core, sampled for 1 s before and after the run)."
    else:
        summary = "none seen (no other process above 10 % of a core before or after the run)."
    return {"before": before, "after": after, "summary": summary}


def run_bench(quick: bool, model: Path, only: tuple[str, ...] = SUITES,
              peer_backend: str | None = None,
              say: Callable[[str], None] = _say, all_outputs: bool = False) -> dict[str, Any]:
    """Run the chosen suites; return the full result (machine, sections, figures...)."""
    from streamser.bench import e2e, fanout, inference, startup, throughput
    from streamser.bench._proc import BenchError, run_json_child
    from streamser.bench.machine import busy_processes, machine_info
    from streamser.bench.report import figures

    started = time.monotonic()
    info = machine_info()
    before = busy_processes()
    if before:
        say("other processes are using the CPU; figures will be distorted: "
            + ", ".join(f"{p['name']} {p['cpu_percent']:.0f}%" for p in before[:4]))
    model_info = _model_info(model)
    say(f"model {model_info['file']} ({model_info['version']}); {info['cpu_model']}, "
        f"{info['cores_usable']} cores; {'quick' if quick else 'full'} run")

    def peer_suite() -> dict[str, Any]:
        backend = peer_backend or ("auto" if quick else "onnx")
        runs, threads = ("2", "1") if quick else ("15", "1,2")
        return run_json_child("streamser.bench.peer", [
            "--model", str(model), "--runs", runs, "--backend", backend, "--threads", threads],
            900.0)

    suites: dict[str, Callable[[], dict[str, Any]]] = {
        "inference": lambda: inference.run_inference(model, quick, say),
        "peer": peer_suite,
        "e2e": lambda: e2e.run_e2e(model, quick, say, all_outputs),
        "throughput": lambda: throughput.run_throughput(model, quick, say),
        "fanout": lambda: fanout.run_fanout(quick, say),
        "startup": lambda: startup.run_startup(model, quick, say, all_outputs),
    }
    sections: dict[str, Any] = {}
    failed = []
    for name in SUITES:
        if name not in only:
            continue
        t0 = time.monotonic()
        try:
            sections[name] = suites[name]()
        except BenchError as exc:
            say(f"{name}: FAILED: {exc}")
            sections[name] = {"error": str(exc)}
            failed.append(name)
        except Exception as exc:  # a bug in a suite must not lose the other figures
            say(f"{name}: FAILED: {type(exc).__name__}: {exc}")
            traceback.print_exc(file=sys.stderr)
            sections[name] = {"error": f"{type(exc).__name__}: {exc}"}
            failed.append(name)
        sections[name]["suite_s"] = round(time.monotonic() - t0, 1)
        if name == "peer" and sections[name].get("status") == "skipped":
            say(sections[name]["message"])
    after = busy_processes()
    figs = figures(sections)
    return {
        "streamser_bench": 1, "mode": "quick" if quick else "full",
        "command": "streamser bench" + (" --quick" if quick else "")
                   + (" --all-outputs" if all_outputs else ""),
        "started_utc": info["time_utc"],
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "duration_s": round(time.monotonic() - started, 1),
        "machine": info, "contention": _contention(before, after), "model": model_info,
        "settings": _settings(quick, sections), "sections": sections,
        "figures": [f.to_dict() for f in figs], "failed_suites": failed,
    }


def _handle(args: argparse.Namespace) -> int:
    from streamser.bench.report import figures, table, update_markdown
    from streamser.errors import ConfigError
    from streamser.model import default_model_path

    only = tuple(s.strip() for s in args.only.split(",")) if args.only else SUITES
    unknown = [s for s in only if s not in SUITES]
    if unknown:
        raise ConfigError(f"--only {','.join(unknown)}: unknown suite; choose from "
                          f"{','.join(SUITES)}.")
    model = args.model or default_model_path()
    result = run_bench(args.quick, Path(model), only, args.peer_backend,
                       all_outputs=args.all_outputs)
    print(table(figures(result["sections"])))
    print(f"\n{result['contention']['summary']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        _say(f"wrote {args.json}")
    if args.markdown:
        update_markdown(args.markdown, result)
        _say(f"updated {args.markdown}")
    return 1 if result["failed_suites"] else 0
