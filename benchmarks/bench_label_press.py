"""What one score key press costs the window's session as the journal grows (issue #27 item 4).

On a 10^4-object store whose journal already holds 50 / 1,000 / 5,000 / 10,000 labels (current
(object, user) labels of two users, half each), it times presses of the session's user: the score committed to the journal,
the labels brought up to date, and the status bar's counts read twice (as the window does a
press), and counts the journal rows read. Two paths, in the same run on the same journal:

* **incremental** (the session now): ``LabellingSession.score_current`` reads only the events
  since the last sync and recomputes the consensus of the objects they touch
  (:class:`galexplorer.active.snapshot.LiveSnapshot`); "yours" is a kept count;
* **full** (before): the same commit, then every label read again and the consensus of every
  labelled object recomputed (:func:`galexplorer.active.snapshot.label_snapshot`, what
  ``galexplorer rank`` still uses) and ``len(journal.current(user))`` twice.

No model is fitted (the live ranking's O(N) array work is the same on both paths); each press
commits with ``synchronous=FULL``, so the disk's fsync is in both columns.

usage: python benchmarks/bench_label_press.py [--quick] [--n 10000] [--labels 50,1000,5000,10000] [--presses 40]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from galexplorer.active.session import LabellingSession, open_store  # noqa: E402
from galexplorer.active.snapshot import label_snapshot  # noqa: E402
from galexplorer.labels import LabelJournal  # noqa: E402


def fill_journal(store: Path, ids: list[str], n_labels: int) -> None:
    """``n_labels`` current labels (object, user), half by each of two users, in actions of 100
    scores; the users share objects only where ``ids`` is shorter than ``n_labels``."""
    rng = np.random.default_rng(n_labels)
    perm = rng.permutation(len(ids))
    half = (n_labels + 1) // 2
    ana = [ids[i] for i in perm[:half]]
    ben = [ids[perm[(half + k) % len(ids)]] for k in range(n_labels - half)]
    for user, part in (("ana", ana), ("ben", ben)):
        with LabelJournal.for_store(store, user) as j:
            for a in range(0, len(part), 100):
                j.score_many(part[a:a + 100], int(rng.integers(0, 6)))


def counts(ses: LabellingSession, full: bool) -> tuple[int, int, int]:
    """The status bar's numbers that read labels: yours, scored, the batch left."""
    yours = len(ses.journal.current(ses.user)) if full else ses.n_mine
    return yours, ses.n_labelled, ses.batch_left()


def press_full(ses: LabellingSession, score: int) -> None:
    """A press as the session did it before: commit, read every label, recompute every consensus."""
    ses.journal.score(ses.ids[ses.current], score)
    snap = label_snapshot(ses.store, ses.journal, strict=False)
    ses.labels[:] = snap.label
    ses.n_labellers[:] = snap.n_labellers
    ses.disputed[:] = snap.disputed
    ses.excluded[:] = snap.excluded_mask()
    ses.refresh_ranking()
    ses.since_refit += 1
    ses.forward()


def time_presses(ses: LabellingSession, presses: int, full: bool, first_row: int) -> tuple[float, float, int]:
    """Median wall ms per press, median CPU ms per press (this process: the fsync's wait is
    not in it) and the most journal rows one press read."""
    rows = [0]
    real = ses.journal._conn.query

    def counted(sql, params=()):
        got = real(sql, params)
        rows[0] += len(got)
        return got
    ses.journal._conn.query = counted
    seconds, cpu, most = [], [], 0
    try:
        for k in range(presses):
            ses.open(first_row + k)
            rows[0] = 0
            t, c = time.perf_counter(), time.process_time()
            if full:
                press_full(ses, k % 6)
            else:
                ses.score_current(k % 6)
            for _ in range(2):
                counts(ses, full)
            seconds.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
            most = max(most, rows[0])
    finally:
        ses.journal._conn.query = real
    return 1000 * statistics.median(seconds[2:]), 1000 * statistics.median(cpu[2:]), most


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="objects in the store")
    ap.add_argument("--labels", default="50,1000,5000,10000", help="labels in the journal before the presses")
    ap.add_argument("--presses", type=int, default=40, help="presses timed per path and size")
    ap.add_argument("--quick", action="store_true", help="2,000 objects, 50 and 1,000 labels, 10 presses")
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.labels, args.presses = 2000, "50,1000", 10
    from active_synthetic import planted, write_store

    sizes = [int(s) for s in args.labels.split(",")]
    room = args.n - 2 * args.presses      # the last rows are left for the timed presses
    if max(sizes) > 2 * room or room < 1:
        ap.error(f"--labels at most 2 × (--n − 2 × --presses) = {2 * room}")
    with tempfile.TemporaryDirectory() as tmp:
        emb, _, _ = planted(args.n, dim=8, seed=4)
        base = write_store(Path(tmp) / "base.h5", emb, {}, with_pca=False, anomaly=False)
        print(f"store: {args.n:,} objects; {args.presses} presses per path; median per press, wall (CPU) ms "
              "(commit + labels up to date + the status bar's counts twice)")
        print("| labels in journal | incremental ms | rows read | full ms | rows read | full / incremental |"
              " incremental / at the first size |")
        print("|---|---|---|---|---|---|---|")
        first = None
        for n_labels in sizes:
            store = Path(tmp) / f"s{n_labels}.h5"
            store.write_bytes(base.read_bytes())
            ses = LabellingSession(open_store(store), "ana")
            try:
                fill_journal(store, list(ses.ids[np.arange(room)]), n_labels)
                ses.sync_labels()
                inc, inc_cpu, inc_rows = time_presses(ses, args.presses, False, room)
                full, full_cpu, full_rows = time_presses(ses, args.presses, True, room + args.presses)
            finally:
                ses.close()
            first = first or (inc, inc_cpu)
            last = (n_labels, inc_cpu, full_cpu)
            print(f"| {n_labels:,} | {inc:.2f} ({inc_cpu:.2f}) | {inc_rows} | {full:.2f} ({full_cpu:.2f}) | "
                  f"{full_rows:,} | x{full / inc:.1f} (x{full_cpu / inc_cpu:.1f}) | "
                  f"x{inc / first[0]:.2f} (x{inc_cpu / first[1]:.2f}) |")
        n_labels, inc_cpu, full_cpu = last
        print(f"CPU per press at {n_labels:,} labels against {sizes[0]:,}: incremental ratio "
              f"x{inc_cpu / first[1]:.2f}; full / incremental ratio at {n_labels:,}: x{full_cpu / inc_cpu:.1f}")


if __name__ == "__main__":
    main()
