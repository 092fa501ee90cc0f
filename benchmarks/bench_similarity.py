"""Similarity search: faiss (exact IndexFlatIP, and the IVF-SQ index ``embed`` writes) against the
bound-pruned NumPy scan galexplorer used before (issue 14, item 2).

For each N the script makes synthetic 128-d low-rank embeddings (those of bench_survey.py),
normalises them, and measures for each search: the build time, the median time of 20 top-20
queries (the query object excluded), the memory the index holds beyond the unit rows, and
recall@20 against an exact NumPy scan (argpartition of V @ q).

    nice -n 5 python benchmarks/bench_similarity.py --n 100000 1000000
    nice -n 5 python benchmarks/bench_similarity.py --codes --n 200000    # SQ8 / SQ6 / SQ4 / PQ32 codes

The bound-pruned scan (``BoundScan`` below) is kept here only as the measured reference: it is
the removed ``SimilarityIndex`` low-rank path (Cauchy-Schwarz bound from a rank-r copy, exact
re-scoring of the rows whose bound reaches the k-th best).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


class BoundScan:
    """The bound-pruned exact scan removed from explore/similarity.py (the reference)."""

    def __init__(self, V: np.ndarray, energy: float = 0.9, max_rank: int = 64, sample: int = 131072):
        self.V = V
        n, d = V.shape
        rows = np.unique(np.linspace(0, n - 1, min(n, sample)).astype(np.int64))
        gram = np.zeros((d, d), np.float64)
        for a in range(0, len(rows), 65536):
            block = V[rows[a:a + 65536]]
            gram += (block.T @ block).astype(np.float64)
        w, U = np.linalg.eigh(gram)
        w, U = w[::-1], U[:, ::-1]
        r = max(1, min(int(np.searchsorted(np.cumsum(w) / w.sum(), energy) + 1), max_rank, d))
        self.P = np.ascontiguousarray(U[:, :r].astype(np.float32))
        self.Y = np.empty((n, r), np.float32)
        self.res = np.empty(n, np.float32)
        for a in range(0, n, 65536):
            y = V[a:a + 65536] @ self.P
            self.Y[a:a + len(y)] = y
            self.res[a:a + len(y)] = np.sqrt(np.maximum(1.0 - np.einsum("ij,ij->i", y, y), 0.0))
        self.rank = r
        self.nbytes = self.Y.nbytes + self.res.nbytes + self.P.nbytes

    def query(self, row: int, k: int):
        q = self.V[row]
        yq = q @ self.P
        rq = np.float32(math.sqrt(max(1.0 - float(yq @ yq), 0.0)))
        ub = self.Y @ yq + self.res * rq + np.float32(1e-4)
        ub[row] = -np.inf
        n = len(ub)
        stride = max(1, n // 16384)
        sample = ub[::stride]
        pos = min(len(sample) - 1, int(math.ceil(max(64 * k, 4096) / n * len(sample))))
        t = float(np.partition(sample, len(sample) - 1 - pos)[len(sample) - 1 - pos])
        seen, sims = np.zeros(0, np.int64), np.zeros(0, np.float32)
        while True:
            cand = np.flatnonzero(ub >= t)
            new = np.setdiff1d(cand, seen, assume_unique=True)
            seen = np.concatenate([seen, new])
            sims = np.concatenate([sims, self.V[new] @ q])
            if len(seen) >= k:
                kth = float(np.partition(sims, len(sims) - k)[len(sims) - k])
                if kth >= t:
                    break
                t = kth
            else:
                t -= max(1e-3, abs(t))
        top = np.argpartition(-sims, k - 1)[:k]
        return seen[top]


def measure(n: int, n_queries: int = 20, k: int = 20) -> list[tuple]:
    import faiss
    from bench_survey import exact_top_k, make_data

    from galexplorer.explore.similarity import (
        ApproximateIndex,
        SimilarityIndex,
        build_ann_index,
        normalise_rows,
    )

    folder = Path(tempfile.mkdtemp(prefix="galexplorer-sim-"))
    emb, _ = make_data(folder, n)
    X = np.load(emb)
    V = normalise_rows(X)
    qs = np.random.default_rng(1).choice(n, n_queries, replace=False)
    truth, exact_t = exact_top_k(V, qs, k)
    rows = [("NumPy scan V @ q (reference)", 0.0, statistics.median(exact_t), 0, 1.0)]

    def run(name, build, query, nbytes):
        t0 = time.perf_counter()
        obj = build()
        t_build = time.perf_counter() - t0
        times, rec = [], []
        query(obj, int(qs[0]))   # warm up
        for q in qs:
            t0 = time.perf_counter()
            got = query(obj, int(q))
            times.append(time.perf_counter() - t0)
            rec.append(len(truth[q] & set(np.asarray(got).tolist())) / k)
        rows.append((name, t_build, statistics.median(times), nbytes(obj), float(np.mean(rec))))

    run("bound-pruned scan (removed)", lambda: BoundScan(V), lambda o, q: o.query(q, k), lambda o: o.nbytes)

    run("faiss IndexFlatIP (exact; SimilarityIndex)", lambda: SimilarityIndex(V), lambda o, q: o.query(q, k)[0],
        lambda o: o.n * o.dim * 4)   # the index holds its own float32 copy of the unit rows

    for kind in ("sq8", "sq4"):
        def approx(kind=kind):
            path = build_ann_index(X, folder / "s.h5", "uuid", kind=kind)
            return ApproximateIndex(faiss.read_index(str(path)), X), path

        run(f"faiss IVF-{kind.upper()} + exact re-rank", approx, lambda o, q: o[0].query(q, k)[0],
            lambda o: o[1].stat().st_size)
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
    return rows


def measure_codes(n: int, codes=("SQ8", "SQ6", "SQ4", "PQ32"), shortlists=(8, 16), n_queries: int = 20,
                  k: int = 20) -> list[tuple]:
    """recall@20 of the IVF index with each kind of code, re-ranked exactly (ApproximateIndex)."""
    import faiss
    from bench_survey import exact_top_k, make_data

    from galexplorer.explore.similarity import ApproximateIndex, normalise_rows

    folder = Path(tempfile.mkdtemp(prefix="galexplorer-codes-"))
    try:
        emb, _ = make_data(folder, n)
        X = np.load(emb)
    finally:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    V = normalise_rows(X)
    qs = np.random.default_rng(1).choice(n, n_queries, replace=False)
    truth, _ = exact_top_k(V, qs, k)
    cells = int(math.sqrt(n))
    train = V[np.unique(np.linspace(0, n - 1, min(n, 64 * cells)).astype(np.int64))]
    out = []
    for code in codes:
        t0 = time.perf_counter()
        index = faiss.index_factory(V.shape[1], f"IVF{cells},{code}", faiss.METRIC_INNER_PRODUCT)
        index.train(train)
        index.add(V)
        t_build = time.perf_counter() - t0
        recalls = []
        for sl in shortlists:
            search = ApproximateIndex(index, X, nprobe=128, shortlist=sl)
            recalls.append(float(np.mean([len(truth[q] & set(search.query(int(q), k)[0].tolist())) / k
                                          for q in qs])))
        out.append((code, index.sa_code_size(), t_build, recalls))
        print(f"  IVF{cells},{code}: {index.sa_code_size()} bytes a row, train + add {t_build:.1f} s, "
              f"recall@20 {recalls}", flush=True)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--quick", action="store_true", help="smoke run: N = 20 000")
    p.add_argument("--codes", action="store_true", help="only the recall of SQ8/SQ6/SQ4/PQ32 codes at each --n")
    args = p.parse_args(argv)
    if args.quick:
        args.n = [20_000]
    if args.codes:
        for n in args.n:
            rows = measure_codes(n)
            ref = rows[0]
            print(f"\nN = {n:,}: codes, bytes a row, train + add, recall@20 (nprobe 128; shortlist 8k, 16k); ratio of build "
                  f"time to {ref[0]}'s")
            for code, size, t, rec in rows:
                print(f"  {code:5s} {size:4d} B {t:7.1f} s ({t / ref[2]:5.1f}x)  "
                      + "  ".join(f"{r:.3f}" for r in rec))
        return 0
    import faiss

    print(f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads; 128-d, top-20, median of 20 queries")
    for n in args.n:
        rows = measure(n)
        ref = rows[0][2]
        print(f"\nN = {n:,}")
        print(f"{'search':44s}{'build s':>10s}{'query ms':>10s}{'vs scan':>9s}{'memory MB':>11s}{'recall@20':>11s}")
        for name, b, q, m, r in rows:
            print(f"{name:44s}{b:>10.2f}{1000 * q:>10.2f}{q / ref:>8.2f}x{m / 2**20:>11.1f}{r:>11.3f}", flush=True)
        print("vs scan: the ratio of the median query time to the NumPy scan's (measured in the same run)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
