"""The shipped propagation benchmark runs end to end (``--smoke``: 200 users, one short round
of each load). Its figures are printed, never asserted: speed is read from a full run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parents[2]


def test_the_propagation_benchmark_runs_and_prints_its_summary() -> None:
    redis = urlparse(os.environ["REDIS_URL"])
    database = urlparse(os.environ["DATABASE_URL"])
    env = {
        **os.environ,
        # The bench drops and creates "<name>_bench": not the one a developer's own run uses.
        "DATABASE_URL": urlunparse(database._replace(path=database.path + "_smoke")),
        # A broker of its own: the bench's worker must not take the test session's tasks.
        "CELERY_BROKER_URL": urlunparse(redis._replace(path="/15")),
    }

    run = subprocess.run(
        [sys.executable, "-m", "policies.bench_propagation", "--smoke"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    lines = run.stdout.strip().splitlines()
    assert any(line.startswith("rounds of single: ") for line in lines)
    summary = json.loads(lines[-1])
    assert set(summary) == {"lag_single_ms", "fanout_10k_s", "api_single", "api_batch", "ceiling"}
    assert 0 < summary["lag_single_ms"]["p50"] <= summary["lag_single_ms"]["p99"]
    assert summary["fanout_10k_s"] > 0
    assert set(summary["api_single"]) == {"rps", "p50_ms", "p99_ms"}
    # Every load answered: a bench whose requests all failed would report no throughput.
    assert summary["api_single"]["rps"] > 0
    assert summary["api_batch"]["decisions_per_s"] > 0
    assert summary["ceiling"]["rps"] > 0
