"""Every benchmark still runs: each script with ``--quick`` (small sizes), so none goes stale.

The figures themselves come from full runs (``python benchmarks/bench_x.py``); see the
closing notes of each issue and docs/. Here we only check that a script completes and prints
a figure together with its reference ratio.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHES = sorted(p.name for p in (ROOT / "benchmarks").glob("bench_*.py"))


def test_every_benchmark_is_checked():
    assert set(BENCHES) >= {"bench_ingest.py", "bench_train.py", "bench_embed.py", "bench_active.py",
                            "bench_scatter.py", "bench_projection.py",
                            "bench_auto_representation.py"}


@pytest.mark.slow
@pytest.mark.parametrize("script", BENCHES)
def test_benchmark_quick_run(script, tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONUNBUFFERED="1")
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--quick"], cwd=tmp_path,
                         capture_output=True, text=True, env=env, timeout=600)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:]
    assert "Traceback" not in out
    assert any(word in out.lower() for word in ("ratio", "x faster", "speed-up", "×", "x the", "% of")), out[-2000:]
