"""Does ``representation = "auto"`` hold up on stores whose embedding is raw-pixel PCA? (issue #22)

On a radio store whose embedding is the stamps' raw-pixel PCA, ``auto`` switched to
``morphology`` in the rank-correlation mode (before any find) and the loop then found 1 of 60
rare objects, against 32 for the embedding and 44 for ``combined``. This benchmark measures
that case on every domain without training an encoder: for ``radio``, ``optical`` and ``xdf``
(built as bench_remaining.py builds them: raw-pixel PCA as the embedding, plus the morphology
and pixel feature sets ``build_store`` writes) and each seed, ``simulate``'s default loop
(gp-anomaly, EI, batches of 10, 200 labels, the ``oracle`` column) runs once per
representation (as bench_choose_representation.py does on trained stores).

Printed per run: found@200, its ratio to random order, recall@100 and the representation the
last refit used; then per domain the mean over seeds with the ratio of each representation's
found to the embedding's and to ``combined``'s (same runs) - the line to read is ``auto``.

    python benchmarks/bench_auto_representation.py              # 3 domains x seeds 0 1 2, 2000 objects
    python benchmarks/bench_auto_representation.py --quick      # radio, 600 objects, seed 0
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_choose_representation import REPRESENTATIONS as ALL_REPRESENTATIONS  # noqa: E402
from bench_choose_representation import compare, print_means, print_runs  # noqa: E402
from bench_remaining import domain_store  # noqa: E402

REPRESENTATIONS = ("embedding", "auto", "combined", "morphology")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--domains", nargs="+", default=["radio", "optical", "xdf"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--n", type=int, default=2000, help="objects per synthetic domain (xdf: n // 100 per class)")
    ap.add_argument("--budget", type=int, default=200)
    ap.add_argument("--representations", nargs="+", default=list(REPRESENTATIONS),
                    choices=ALL_REPRESENTATIONS)
    ap.add_argument("--quick", action="store_true", help="radio, 600 objects, one seed (smoke test)")
    args = ap.parse_args()
    logging.getLogger("galexplorer").setLevel(logging.WARNING)
    if args.quick:
        args.domains, args.n, args.seeds = ["radio"], 600, [0]
    reps = list(dict.fromkeys(["embedding", "combined", *args.representations]))   # the references first
    results: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for domain in args.domains:
            for seed in args.seeds:
                t0 = time.perf_counter()
                store = domain_store(domain, args.n, seed, Path(tmp))
                n, out = compare(store, reps, seed, args.budget)
                print(f"{domain} seed {seed}: {n} objects, raw-pixel PCA store, {time.perf_counter() - t0:.0f} s",
                      flush=True)
                print_runs(domain, seed, min(args.budget, n), out)
                for rep, m in out.items():
                    results.setdefault((domain, rep), []).append(m)
    print_means(results, against=("embedding", "combined"))


if __name__ == "__main__":
    main()
