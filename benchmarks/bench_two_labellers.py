"""Two labellers on one store at once, through ``LabelJournal`` (two processes, spawn).

Each labeller scores N objects as fast as the calls return (faster than any key repeat), one
committed transaction per score (WAL, ``synchronous=FULL``, ``BEGIN IMMEDIATE``). Reported: the
events in the journal afterwards (must be 2N), the errors (must be none: no "database is
locked"), events per second, the median, 95th-percentile and longest commit (waits for the
other's lock included), and the tries again after SQLite answered busy — against one labeller
alone scoring N, measured in the same run; and the two again at a held key's repeat rate
(30 scores/s each), the fastest a person can go.

usage: python benchmarks/bench_two_labellers.py [--n 500] [--quick]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEY_REPEAT_HZ = 30.0   # a held key on most desktops: the fastest a person scores
sys.path.insert(0, str(ROOT))


def labeller(path: str, user: str, n: int, rate: float, ready, go, results) -> None:
    """One labeller: open, wait for the start, score ``n`` objects (``rate`` per second, 0: as
    fast as the calls return), report."""
    from galexplorer.labels import LabelJournal

    journal = LabelJournal(path, user=user)
    ready.set()
    go.wait(60)
    errors, lat = [], []
    t0 = time.perf_counter()
    for i in range(n):
        if rate:
            time.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
        t = time.perf_counter()
        try:
            journal.score(f"{user}{i:06d}", i % 6)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        lat.append(time.perf_counter() - t)
    took = time.perf_counter() - t0
    st = journal.write_stats
    journal.close()
    results.put({"user": user, "errors": errors, "lat": lat, "took": took, "retries": st.retries,
                 "max_backoff_s": st.max_backoff_s})


def run(folder: Path, users: list[str], n: int, rate: float = 0.0) -> dict:
    from galexplorer.labels import LabelJournal, journal_path

    path = journal_path(folder / f"{'-'.join(users)}-{rate:g}.h5")
    ctx = mp.get_context("spawn")
    results, go = ctx.Queue(), ctx.Event()
    readies = [ctx.Event() for _ in users]
    procs = [ctx.Process(target=labeller, args=(str(path), u, n, rate, r, go, results)) for u, r in zip(users, readies)]
    for p in procs:
        p.start()
    for r in readies:
        r.wait(120)
    t0 = time.perf_counter()
    go.set()
    got = [results.get(timeout=600) for _ in users]
    wall = time.perf_counter() - t0
    for p in procs:
        p.join(60)
    with LabelJournal(path, readonly=True) as j:
        scores = sum(e.kind == "score" for e in j.events())
    lat = sorted(x for g in got for x in g["lat"])
    return {"events": scores, "expected": n * len(users), "errors": sum(len(g["errors"]) for g in got),
            "first_error": next((e for g in got for e in g["errors"]), ""), "per_s": n * len(users) / wall,
            "p50_ms": 1000 * statistics.median(lat), "p95_ms": 1000 * lat[int(0.95 * (len(lat) - 1))],
            "max_ms": 1000 * lat[-1], "retries": sum(g["retries"] for g in got),
            "max_backoff_ms": 1000 * max(g["max_backoff_s"] for g in got)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500, help="scores per labeller")
    ap.add_argument("--quick", action="store_true", help="50 scores each (the smoke test)")
    args = ap.parse_args()
    n = 50 if args.quick else args.n
    with tempfile.TemporaryDirectory(prefix="bench-two-labellers-") as tmp:
        one = run(Path(tmp), ["solo"], n)
        two = run(Path(tmp), ["ana", "ben"], n)
        keys = run(Path(tmp), ["ana", "ben"], n, KEY_REPEAT_HZ)
    print(f"{n} scores per labeller, one committed transaction each (WAL, synchronous=FULL)")
    print(f"{'':12} {'events':>11} {'errors':>6} {'events/s':>9} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7} "
          f"{'retries':>7} {'backoff ms':>10}")
    for name, r in (("one alone", one), ("two at once", two), (f"two, {KEY_REPEAT_HZ:g}/s", keys)):
        print(f"{name:12} {r['events']:>5}/{r['expected']:<5} {r['errors']:>6} {r['per_s']:>9.0f} {r['p50_ms']:>7.1f} "
              f"{r['p95_ms']:>7.1f} {r['max_ms']:>7.1f} {r['retries']:>7} {r['max_backoff_ms']:>10.1f}")
    print(f"ratio two/one: events/s {two['per_s'] / one['per_s']:.2f}x, "
          f"max commit {two['max_ms'] / one['max_ms']:.1f}x (at {KEY_REPEAT_HZ:g}/s each: "
          f"{keys['max_ms'] / one['max_ms']:.1f}x)")
    ok = all(r["events"] == r["expected"] and not r["errors"] for r in (one, two, keys))
    if not ok:
        print(f"LOST OR FAILED: {two['first_error'] or one['first_error']}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
