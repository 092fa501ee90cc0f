"""Labellers in other processes, for the tests of several people labelling one store at once.

A module of its own so that ``multiprocessing`` with the ``spawn`` start method (a fresh
interpreter, as on macOS and Windows) can import the worker.
"""

from __future__ import annotations

import time


def score_as_fast_as_possible(journal_path: str, user: str, n: int, ready, go, results) -> None:
    """Open the journal (all labellers at once), wait for ``go``, record ``n`` scores with no pause,
    and put what happened on ``results``: counts, errors, the journal's write statistics and the
    wall-clock span of the writes (to show they overlapped)."""
    from galexplorer.labels import LabelJournal

    errors: list[str] = []
    latencies: list[float] = []
    t0 = t1 = time.time()
    try:
        journal = LabelJournal(journal_path, user=user)
        ready.set()
        go.wait(60)
        t0 = time.time()
        for i in range(n):
            t = time.perf_counter()
            try:
                journal.score(f"{user}{i:05d}", i % 6)
            except Exception as exc:   # report every failure, keep going: the count says what was lost
                errors.append(f"{type(exc).__name__}: {exc}")
            latencies.append(time.perf_counter() - t)
        t1 = time.time()
        stats = journal.write_stats
        journal.close()
        results.put({"user": user, "errors": errors, "start": t0, "end": t1, "latencies": latencies,
                     "commits": stats.commits, "retries": stats.retries, "max_commit_s": stats.max_commit_s,
                     "max_backoff_s": stats.max_backoff_s})
    except Exception as exc:
        ready.set()
        results.put({"user": user, "errors": errors + [f"{type(exc).__name__}: {exc}"], "start": t0, "end": t1,
                     "latencies": latencies, "commits": 0, "retries": 0, "max_commit_s": 0.0,
                     "max_backoff_s": 0.0})
