"""The soak command: its arithmetic, and a short real run (server process + hostile clients)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from streamser.soak.metrics import ClientLog, ProcessSample, build_report, slope_per_hour
from streamser.soak.runner import SoakConfig, run_soak


def test_slope_is_per_hour_least_squares() -> None:
    """Points rising 1 MB per 30 min give 2 MB/h; flat or single points give 0."""
    assert slope_per_hour([(0, 100.0), (1800, 101.0), (3600, 102.0)]) == pytest.approx(2.0)
    assert slope_per_hour([(0, 5.0), (60, 5.0)]) == 0.0
    assert slope_per_hour([(0, 5.0)]) == 0.0


def test_client_log_counts_missing_frames_and_gaps() -> None:
    """Skipped sequence numbers, gaps over 1 s and the worst latency are counted."""
    log = ClientLog("healthy")
    log.frame(1, None, None, 10.0)
    log.frame(2, 1, 0.5, 12.0)
    log.frame(5, 2, 1.5, 30.0)
    assert (log.frames, log.missing, log.gaps_over_1s) == (3, 2, 1)
    assert log.max_gap_s == 1.5 and log.max_latency_ms == 30.0


def test_report_leaves_the_warm_up_out_of_the_slope() -> None:
    """RSS growth during warm-up does not count; the markdown names the figures."""
    samples = [ProcessSample(t, 100.0 + (5.0 if t >= 600 else t / 120), 12, 6, t / 100, 0, True)
               for t in range(0, 7200, 60)]
    report = build_report(samples, [ClientLog("healthy")], warmup_s=600)
    assert report.rss_slope_mb_per_h == pytest.approx(0.0, abs=1e-9)
    assert "slope after warm-up +0.00 MB/h" in report.markdown("t")


@pytest.mark.slow
def test_a_short_soak_writes_its_report(tiny_model_path: Path, tmp_path: Path) -> None:
    """20 s against every kind of client: the server survives, healthy clients get frames
    with no sequence gap, abusive messages are answered, the report files exist."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = run_soak(SoakConfig(seconds=20.0, out=tmp_path, port=port, sample_s=4.0,
                               warmup_s=0.0, model=tiny_model_path))
    report = json.loads((tmp_path / "report.json").read_text())
    assert code == 0 and report["server_alive"]
    healthy = report["clients"]["healthy"]
    assert healthy["frames"] > 50 and healthy["missing"] == 0
    abusive = report["clients"]["abusive"]
    assert abusive["replies"].get("pong", 0) >= 1 and "error:too_deep" in abusive["replies"]
    assert report["clients"]["churn"]["connections"] > 10
    assert (tmp_path / "report.md").exists() and (tmp_path / "samples.jsonl").exists()
