"""Active learning: GP regressor, acquisition functions, scorers, ranking, oracle simulation, metrics.
No torch, no Qt.

Public API (what the CLI and the explorer call; all safe to call from a worker thread)::

    from galexplorer.active.loop import ActiveLoop, LoopConfig, LoopResult
    loop = ActiveLoop(store, LoopConfig(scorer="gp", acquisition="ei", xi=0.5, batch_size=10))
    loop.initial_batch() -> (k,) int64                      # spans PC 1, deterministic
    loop.fit(labelled, labels, excluded=None, previous=None) -> LoopResult
        # .mean .std .acquisition (N,) float32 (std/acquisition NaN where not computed)
        # .next_batch (k,) int64, .order (N,) int64, .scorer, .n_labels, .seconds, .info
        # .complete_std() fills std for every object (slow for the GP at 10^6)
        # .complete_mean() the exact mean where the GP's pre-filter left the low-rank one
        #   (from 500 000 objects; .mean_complete says which)
        # .remaining(threshold=None) -> RemainingEstimate: interesting objects left (expected,
        #   interval, next batch's yield, stopping hint) from the posterior (active.remaining)
    loop.anomaly_prior() -> (N,) float32 0–5

    from galexplorer.active.snapshot import label_snapshot
    label_snapshot(store, journal, user=None) -> LabelSnapshot (label, n_labellers, disputed per
        object; excluded rows); .fit_inputs(scorer) -> (labelled, labels, excluded) rows, the one
        path from the journal to every fit (disputed objects left out for scorers that skip them)

    from galexplorer.active.ranking import ranked_table, rank_store, current_ranking
    ranked_table(store, result_or_ranking, journal, user=None, top=None) -> RankedTable
    rank_store(store_path, config, user=None) -> RankReport    # writes STORE.h5.ranking.h5

    from galexplorer.store.ranking import read_ranking, write_ranking, Ranking
    from galexplorer.export import write_ranked, export_store
    from galexplorer.explore.similarity import SimilarityIndex
    from galexplorer.active.simulate import simulate, SimulateConfig, write_curve

Modules: ``features`` (standardised PCA features), ``kernels`` and ``gp`` (the regressor),
``acquisition`` (EI, UCB, uncertainty, batch selection, the spanning first batch),
``prefilter`` (the GP's batch at survey scale: a low-rank pass bounds every object, the exact
GP runs on the candidates that could win),
``scorers`` (gp, knn, neighbour, iforest, lof), ``loop``, ``snapshot``, ``ranking``, ``oracle``,
``metrics``, ``simulate``, ``remaining`` (how many interesting objects are left). See docs/active-learning.md.
"""
