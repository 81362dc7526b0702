"""What machine a benchmark ran on, and whether something else was using it at the time.

:func:`machine_info` reads ``/proc`` (Linux) and package versions; :func:`busy_processes` lists
other processes using CPU over a short sample (needs psutil; empty list without it), so a report
can say "measured while X was running" instead of silently publishing distorted figures.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from importlib import metadata
from typing import Any

__all__ = ["busy_processes", "cpu_load", "machine_info"]


def _cpu_model() -> str:
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "cpu family", "model") and key not in fields:
                    fields[key] = value.strip()
                if not line.strip() and fields:
                    break
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return name


def _cpu_flags() -> list[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return sorted(f for f in flags if f in {"avx", "avx2", "avx512f", "fma",
                                                             "avx512_vnni", "avx_vnni"})
    except OSError:
        pass
    return []


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _mem_total_mb() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024, 0)
    except OSError:
        pass
    return None


def cpu_load() -> list[float]:
    """1, 5 and 15 minute load averages ([] where unavailable)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def machine_info() -> dict[str, Any]:
    """CPU model, cores, memory, OS, and the versions that matter for the figures."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    versions = {name: _version(dist) for name, dist in (
        ("streamser", "streamser"), ("onnxruntime", "onnxruntime"), ("numpy", "numpy"),
        ("websockets", "websockets"), ("sounddevice", "sounddevice"), ("soxr", "soxr"),
        ("torch", "torch"), ("transformers", "transformers"), ("psutil", "psutil"),
    )}
    versions["python"] = platform.python_version()
    return {
        "cpu_model": _cpu_model(),
        "cpu_flags": _cpu_flags(),
        "cores_logical": os.cpu_count(),
        "cores_usable": usable,
        "memory_mb": _mem_total_mb(),
        "os": f"{platform.system()} {platform.release()}",
        "python_implementation": platform.python_implementation(),
        "executable": sys.executable,
        "versions": versions,
        "load_avg": cpu_load(),
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def busy_processes(sample_s: float = 1.0, min_percent: float = 10.0) -> list[dict[str, Any]]:
    """Other processes using at least ``min_percent`` % of a core over ``sample_s`` seconds.

    Each entry: ``pid``, ``name``, ``cpu_percent``, ``cmdline`` (first 120 characters).
    Returns [] when psutil is not installed.
    """
    try:
        import psutil
    except ImportError:
        return []
    me = os.getpid()
    procs = []
    for proc in psutil.process_iter(["pid", "name"]):
        if proc.info["pid"] == me:
            continue
        try:
            proc.cpu_percent(None)
            procs.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    time.sleep(sample_s)
    busy = []
    for proc in procs:
        try:
            pct = proc.cpu_percent(None)
            if pct >= min_percent:
                cmd = " ".join(proc.cmdline())[:120]
                busy.append({"pid": proc.pid, "name": proc.name(), "cpu_percent": round(pct, 1),
                             "cmdline": cmd})
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return sorted(busy, key=lambda p: -p["cpu_percent"])
