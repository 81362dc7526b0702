"""Soak measurements (sans-I/O): process samples, per-client frame logs, and the report.

Everything here is plain data and arithmetic, fed by :mod:`streamser.soak.runner` and tested
without processes or sockets. Times are seconds unless a name says otherwise (``_ms``, ``_mb``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

__all__ = ["ClientLog", "ProcessSample", "SoakReport", "build_report", "slope_per_hour"]


@dataclass(frozen=True)
class ProcessSample:
    """One look at the server process: ``t`` seconds since the soak started."""

    t: float
    rss_mb: float
    fds: int
    threads: int
    cpu_s: float
    log_bytes: int
    alive: bool


@dataclass
class ClientLog:
    """What one kind of client saw (owned by the soak's asyncio thread).

    ``frames`` counts frame messages; ``missing`` counts sequence numbers skipped between two
    frames of one connection; ``max_gap_s`` is the longest wait between two frames of one
    connection; latency is frame creation (``wall_time``) to receipt, plus the frame's own
    analysis latency.
    """

    kind: str
    connections: int = 0
    frames: int = 0
    missing: int = 0
    gaps_over_1s: int = 0
    max_gap_s: float = 0.0
    max_latency_ms: float = 0.0
    latency_sum_ms: float = 0.0
    closes: dict[str, int] = field(default_factory=dict)
    replies: dict[str, int] = field(default_factory=dict)
    failures: int = 0

    def frame(self, seq: int, last_seq: int | None, gap_s: float | None,
              latency_ms: float) -> None:
        """Record one frame received ``gap_s`` after the previous one on the same connection."""
        self.frames += 1
        if last_seq is not None and seq > last_seq + 1:
            self.missing += seq - last_seq - 1
        if gap_s is not None:
            self.max_gap_s = max(self.max_gap_s, gap_s)
            self.gaps_over_1s += gap_s > 1.0
        self.max_latency_ms = max(self.max_latency_ms, latency_ms)
        self.latency_sum_ms += latency_ms

    def closed(self, reason: str) -> None:
        """Count how a connection ended (close code or exception name)."""
        self.closes[reason] = self.closes.get(reason, 0) + 1

    def reply(self, kind: str) -> None:
        """Count a non-frame message by type."""
        self.replies[kind] = self.replies.get(kind, 0) + 1


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of ``(t seconds, value)`` points, in value units per hour."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    if var == 0:
        return 0.0
    cov = sum((t - mt) * (v - mv) for t, v in points)
    return cov / var * 3600.0


@dataclass(frozen=True)
class SoakReport:
    """The summary written to ``report.json`` and ``report.md``."""

    elapsed_s: float
    warmup_s: float
    samples: int
    rss_first_mb: float
    rss_last_mb: float
    rss_max_mb: float
    rss_slope_mb_per_h: float
    fds_min: int
    fds_max: int
    threads_min: int
    threads_max: int
    cpu_percent: float
    log_bytes: int
    server_alive: bool
    clients: dict[str, dict[str, object]]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return asdict(self)

    def markdown(self, title: str) -> str:
        """A short human report."""
        lines = [
            f"# {title}", "",
            f"- elapsed: {self.elapsed_s / 3600:.2f} h ({self.samples} samples; warm-up "
            f"{self.warmup_s / 60:.0f} min excluded from the slope)",
            f"- server alive at the end: {self.server_alive}",
            f"- RSS: {self.rss_first_mb:.1f} MB -> {self.rss_last_mb:.1f} MB (max "
            f"{self.rss_max_mb:.1f}); slope after warm-up {self.rss_slope_mb_per_h:+.2f} MB/h",
            f"- fds {self.fds_min}..{self.fds_max}, threads {self.threads_min}.."
            f"{self.threads_max}, CPU {self.cpu_percent:.1f}% of one core, "
            f"stderr {self.log_bytes} bytes",
            "", "| clients | connections | frames | missing seq | gaps > 1 s | max gap s | "
            "max latency ms | mean latency ms | closes | replies |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for kind, c in self.clients.items():
            frames = int(c["frames"])  # type: ignore[call-overload]
            mean = float(c["latency_sum_ms"]) / frames if frames else 0.0  # type: ignore[arg-type]
            lines.append(
                f"| {kind} | {c['connections']} | {frames} | {c['missing']} | "
                f"{c['gaps_over_1s']} | {float(c['max_gap_s']):.2f} | "  # type: ignore[arg-type]
                f"{float(c['max_latency_ms']):.1f} | {mean:.1f} | "  # type: ignore[arg-type]
                f"{c['closes']} | {c['replies']} |")
        return "\n".join(lines) + "\n"


def build_report(samples: list[ProcessSample], clients: list[ClientLog],
                 warmup_s: float) -> SoakReport:
    """Summarise the samples so far (``samples`` in time order, at least one)."""
    first, last = samples[0], samples[-1]
    steady = [(s.t, s.rss_mb) for s in samples if s.t >= warmup_s and s.alive]
    elapsed = last.t - first.t
    cpu = (last.cpu_s - first.cpu_s) / elapsed * 100.0 if elapsed > 0 else 0.0
    live = [s for s in samples if s.alive] or samples
    return SoakReport(
        elapsed_s=last.t,
        warmup_s=warmup_s,
        samples=len(samples),
        rss_first_mb=first.rss_mb,
        rss_last_mb=last.rss_mb,
        rss_max_mb=max(s.rss_mb for s in samples),
        rss_slope_mb_per_h=slope_per_hour(steady),
        fds_min=min(s.fds for s in live),
        fds_max=max(s.fds for s in live),
        threads_min=min(s.threads for s in live),
        threads_max=max(s.threads for s in live),
        cpu_percent=cpu,
        log_bytes=last.log_bytes,
        server_alive=last.alive,
        clients={c.kind: asdict(c) for c in clients},
    )
