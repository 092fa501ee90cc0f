"""``benchmarks/bench_soak.py``'s judgement of memory growth: after the warm-up, defined as the
first sample at which the window's bounded caches are full (issue #27 item 4)."""

from __future__ import annotations

import sys
from argparse import Namespace
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_soak  # noqa: E402

MiB = 2**20


def _sample(labels: int, rss_mib: float, thumbs_mib: float, history: int = 200) -> dict:
    full = thumbs_mib >= 16
    return {"labels": labels, "s": labels / 10, "cpu": 0.0, "rss": int(rss_mib * MiB), "fds": 14, "threads": 7,
            "heap": 100 * MiB, "pymalloc": 30 * MiB, "py_threads": 2, "model_rss": 180 * MiB, "model_fds": 8,
            "model_threads": 5, "refits": labels // 10, "fits": labels // 10, "wall": 0.1, "stall": 0.05,
            "thumbs": int(thumbs_mib * MiB), "thumbs_max": 16 * MiB, "thumbs_full": full, "history": history,
            "history_max": 200, "caches_full": full and history >= 200}


def _result(samples: list[dict]) -> dict:
    return {"samples": samples, "took": 100.0, "missed": 0, "kills": 0, "refits": 10, "fits": 10, "starts": 1,
            "failures": 0, "acked": 40, "events": 40, "soak_events": 40, "fds_before": 7, "fds_after": 7,
            "fds_new": [], "threads_before": 1, "threads_after": 1, "left_procs": []}


ARGS = Namespace(presses=40, n=1000, scorer="knn", batch=10, rate=30.0, kill_every=0)


def test_growth_is_judged_from_the_first_sample_with_the_caches_full(capsys):
    # the window grows x1.15 while its thumbnail cache fills, then x1.05
    s = [_sample(10, 300, 4), _sample(20, 320, 10), _sample(30, 330, 16), _sample(40, 346.5, 16)]
    assert bench_soak.report(_result(s), ARGS)
    out = capsys.readouterr().out
    assert "ratio to the first sample (10 labels): window RSS x1.155" in out
    assert "full from sample 3 (30 labels: thumbnail cache 16.0 of 16 MiB, history 200 of 200" in out
    assert "RSS x1.050 (peak x1.050) against that sample" in out
    assert "goal <= x1.10 after the warm-up: window met" in out
    assert "| 30 (warm-up: caches full) |" in out


def test_a_history_not_yet_full_delays_the_warm_up_and_growth_after_it_misses_the_goal(capsys):
    s = [_sample(10, 300, 16, history=100), _sample(20, 300, 16), _sample(30, 340, 16)]
    bench_soak.report(_result(s), ARGS)
    out = capsys.readouterr().out
    assert "full from sample 2 (20 labels" in out
    assert "window NOT met (x1.133 at its peak)" in out


def test_caches_that_never_fill_leave_the_growth_unjudged(capsys):
    s = [_sample(10, 300, 2), _sample(20, 330, 5)]
    bench_soak.report(_result(s), ARGS)
    out = capsys.readouterr().out
    assert "never filled in this run (thumbnail cache 5.0 of 16 MiB" in out
    assert "window not judged (no sample after the warm-up); model met" in out


@pytest.mark.skipif(not hasattr(sys, "_debugmallocstats"), reason="not CPython")
def test_pymalloc_bytes_counts_whole_arenas_and_grows_with_small_objects():
    before = bench_soak.pymalloc_bytes()
    held = [(i, str(i)) for i in range(300_000)]   # ~30 MiB of small objects
    after = bench_soak.pymalloc_bytes()
    assert before > 0 and after - before >= 16 * MiB, (before, after)
    del held
