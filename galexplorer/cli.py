"""The ``galexplorer`` command line. Thin: parse, call the library, print, choose exit codes.

Exit codes: 0 ok, 2 bad input or usage (one line on stderr: what, which file, what to do),
1 internal error (a bug: rerun with ``--verbose`` for the traceback), 130 interrupted.

Heavy libraries (torch, Qt, umap) are imported inside the subcommands that need them, so
``galexplorer --help`` and ``galexplorer open`` start fast.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time

from . import __version__, progress
from .active.config import LoopConfig
from .active.registry import (
    ACQUISITIONS,
    COLD_STARTS,
    DEFAULT_COLD_START,
    FEATURE_SCALINGS,
    REPRESENTATIONS,
    SCORERS,
)
from .errors import ConfigError, GalexplorerError
from .label_scale import MAX_SCORE

log = logging.getLogger("galexplorer")

COMMANDS = {
    "ingest": "FITS, image folders or HDF5 cubes -> a cutouts HDF5 file",
    "train": "self-supervised training (SimCLR, BYOL, VICReg) of a ResNet",
    "presets": "list the shipped training and loop presets, or print one (for --preset)",
    "embed": "encoder or your own embeddings -> store (PCA, UMAP, anomaly)",
    "info": "summarise a cutouts file or a store and its labels",
    "labels": "export the label journal's events (backup) or import/merge them",
    "open": "the desktop explorer: scatter, tooltips, labelling, GP loop",
    "rank": "refit a scorer on your labels and rank every object",
    "export": "write the ranked candidate list as CSV or VOTable",
    "simulate": "run the labelling loop with a catalogue column as oracle",
    "refine": "fine-tune the encoder on your labels and the unlabelled objects -> a new store",
    "demo": "build and open a demo on real Hubble Deep Field galaxies",
}


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit code 2)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _csv_list(text: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list, e.g. g,r,i")
    return items


def _shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(t) for t in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected i/n such as 0/4, got {text!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise argparse.ArgumentTypeError(f"shard {text!r}: need 0 <= i < n")
    return i, n


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


# --------------------------------------------------------------------------------------------
# subcommands
# --------------------------------------------------------------------------------------------

def _add_ingest(sub) -> None:
    p = sub.add_parser("ingest", help=COMMANDS["ingest"], description=COMMANDS["ingest"],
                       epilog="Every input kind, option and error is explained in docs/ingest.md.")
    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="FITS files (.fits .fit .fits.gz .fz), images (.png .jpg .tif), HDF5 cubes, "
                        "or folders of them (none: the catalogue's path column)")
    p.add_argument("-o", "--output", required=True, metavar="CUTOUTS.h5", help="the cutouts file to write")
    p.add_argument("--size", type=_positive_int, default=64, metavar="PX", help="stamp side in pixels (default 64)")
    p.add_argument("--catalog", metavar="TABLE",
                   help="catalogue (CSV, FITS, VOTable, ECSV, IPAC) with id, ra, dec and any other columns, "
                        "or x,y pixel columns, or a path column")
    p.add_argument("--bands", type=_csv_list, metavar="g,r,i", help="band names, blue to red")
    p.add_argument("--band-pattern", metavar="PATTERN",
                   help="one file per band: a file-name pattern with {id} and {band}, e.g. '{id}_{band}.fits'")
    p.add_argument("--mosaic", action="store_true",
                   help="cut stamps at the catalogue's ra/dec (or x/y) out of large FITS images "
                        "(automatic for one FITS image and a catalogue of positions)")
    p.add_argument("--cut-size", type=_positive_int, metavar="PX",
                   help="side of the stamps cut from a mosaic before resampling to --size (default: --size)")
    p.add_argument("--xy-origin", type=int, choices=[0, 1], default=0,
                   help="number of the first pixel in the catalogue's x/y columns: 0 (numpy, astropy; "
                        "default) or 1 (FITS, SExtractor, DS9)")
    p.add_argument("--hdu", metavar="N|NAME", help="FITS HDU to read (default: the first image)")
    p.add_argument("--dataset", metavar="NAME", help="dataset holding the images in an HDF5 input")
    p.add_argument("--id-column", metavar="NAME", help="catalogue id column (default: id, objid, name, ...)")
    p.add_argument("--ra-column", metavar="NAME", help="catalogue ra column (default: ra, ra_deg, ...)")
    p.add_argument("--dec-column", metavar="NAME", help="catalogue dec column (default: dec, dec_deg, ...)")
    p.add_argument("--preprocess", action="store_true",
                   help="crop to the central source (sigma-clipped threshold + contour), as Astronomaly")
    p.add_argument("--thumb-size", type=_positive_int, default=64, metavar="PX",
                   help="side of the display thumbnails (default 64)")
    p.set_defaults(run=_run_ingest)


def _run_ingest(args) -> int:
    from .data.ingest import IngestConfig, ingest

    cfg = IngestConfig(size=args.size, catalog=args.catalog, bands=args.bands,
                       band_pattern=args.band_pattern, mosaic=args.mosaic, dataset=args.dataset,
                       preprocess=args.preprocess, thumb_size=args.thumb_size, cut_size=args.cut_size,
                       hdu=args.hdu, id_column=args.id_column, ra_column=args.ra_column,
                       dec_column=args.dec_column, xy_origin=args.xy_origin)
    report = ingest(args.inputs, args.output, cfg)
    _say(args, report.summary())
    return 0


def _add_train(sub) -> None:
    p = sub.add_parser("train", help=COMMANDS["train"], description=COMMANDS["train"])
    p.add_argument("cutouts", metavar="CUTOUTS.h5")
    p.add_argument("-o", "--output", required=True, metavar="RUN_DIR", help="folder for checkpoints and encoder")
    p.add_argument("--preset", metavar="NAME",
                   help="a shipped set of options (`galexplorer presets` lists them), e.g. cpu-quick; "
                        "--config and the options given here win over it")
    p.add_argument("--config", metavar="FILE",
                   help="TOML or JSON file with the same options (RUN_DIR/config.json of a run is one)")
    p.add_argument("--method", choices=["byol", "nnclr", "simclr", "vicreg"], help="self-supervised method (default simclr)")
    p.add_argument("--backbone", choices=["resnet18", "resnet34", "resnet50"])
    p.add_argument("--epochs", type=_positive_int)
    p.add_argument("--batch-size", type=_positive_int)
    p.add_argument("--lr", type=float)
    p.add_argument("--image-size", type=_positive_int, metavar="PX",
                   help="crop fed to the network (default: min(64, stamp size))")
    p.add_argument("--stem", choices=["auto", "small", "medium", "standard"],
                   help="first layers: small (3x3 stride 1, no max-pool) keeps the detail of small stamps at "
                        "~16x the cost of standard, medium (no max-pool) half of it at ~2x; auto = small on "
                        "CUDA for crops <= 96 px, medium on CPU for crops <= 64 px, else standard")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"])
    p.add_argument("--seed", type=int)
    p.add_argument("--workers", type=int, metavar="N", help="data-loading worker processes")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR's latest checkpoint")
    p.add_argument("--init", metavar="PATH", help="start from saved weights (encoder.pt or checkpoint)")
    p.add_argument("--eval-column", metavar="COLUMN",
                   help="label column in the cutouts file: report kNN and linear-probe accuracy each epoch")
    p.set_defaults(run=_run_train)


#: the train options that set TrainConfig fields (None when not given: the config file's or the default applies)
_TRAIN_OPTIONS = ("method", "backbone", "stem", "epochs", "batch_size", "lr", "image_size", "device", "seed",
                  "workers", "eval_column")


def _run_train(args) -> int:
    from .ssl.config import config_from_options, resume_overrides
    from .ssl.trainer import train

    options = {k: getattr(args, k) for k in _TRAIN_OPTIONS}
    cfg = config_from_options(options, args.config, args.preset)
    report = train(args.cutouts, args.output, cfg, resume=args.resume, init=args.init,
                   overrides=resume_overrides(options, args.config, args.preset) if args.resume else {})
    _say(args, report.summary())
    return 0


def _add_presets(sub) -> None:
    p = sub.add_parser("presets", help=COMMANDS["presets"], description=COMMANDS["presets"],
                       epilog="Use one with `galexplorer train CUTOUTS.h5 -o RUN --preset NAME` (training) or "
                              "`galexplorer rank STORE.h5 --preset NAME` / `simulate ... --preset NAME` (loop); copy "
                              "a training one (`galexplorer presets NAME > mine.toml`), edit it and pass --config mine.toml.")
    p.add_argument("name", nargs="?", metavar="NAME", help="print this preset's TOML (default: list them all)")
    p.set_defaults(run=_run_presets)


def _run_presets(args) -> int:
    from .presets import KINDS, preset_names, preset_summary, preset_text

    if args.name:
        print(preset_text(args.name), end="")
        return 0
    names = {kind: preset_names(kind) for kind in KINDS}
    width = max(len(n) for ns in names.values() for n in ns)
    lines = []
    for kind, ns in names.items():
        lines.append(f"{KINDS[kind][1]}:")
        lines += [f"  {n:<{width}}  {preset_summary(n, kind)}" for n in ns]
    _say(args, "\n".join(lines))
    return 0


def _add_embed(sub) -> None:
    p = sub.add_parser("embed", help=COMMANDS["embed"], description=COMMANDS["embed"])
    p.add_argument("cutouts", nargs="?", metavar="CUTOUTS.h5")
    p.add_argument("--run", dest="run_dir", metavar="RUN_DIR", help="training run folder holding encoder.pt")
    p.add_argument("-o", "--output", required=True, metavar="STORE.h5")
    p.add_argument("--embeddings", metavar="FILE",
                   help="use these embeddings (.npy, .h5, .parquet, .csv) instead of an encoder")
    p.add_argument("--dataset", metavar="NAME", help="HDF5 dataset with the embeddings")
    p.add_argument("--id-dataset", metavar="NAME", help="HDF5 dataset with the ids")
    p.add_argument("--id-column", metavar="NAME", help="id column of a Parquet/CSV embeddings file")
    p.add_argument("--feature-columns", metavar="GLOB", help="feature columns, e.g. 'feat_*'")
    p.add_argument("--allow-missing", action="store_true", help="keep the objects present on both sides")
    p.add_argument("--no-cutouts", action="store_true", help="build the store without a cutouts file")
    p.add_argument("--catalog", metavar="TABLE", help="ids, ra/dec and columns when there is no cutouts file")
    p.add_argument("--batch-size", type=_positive_int, default=256)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--pca-variance", type=float, default=0.95, metavar="F",
                   help="keep the principal components that explain this fraction of variance")
    p.add_argument("--projection", choices=["umap", "pca"], default="umap")
    p.add_argument("--umap-neighbors", type=int, metavar="K",
                   help="UMAP's n_neighbors (default 15): larger keeps bigger groups together")
    p.add_argument("--umap-min-dist", type=float, metavar="D",
                   help="UMAP's min_dist (default 0.01): larger spreads tight chains and clumps apart")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shard", type=_shard, metavar="i/n", help="embed only shard i of n")
    p.add_argument("--cluster", metavar="ADDRESS",
                   help="run the encoder, and the anomaly, cluster and map placement of every object, in "
                        "row blocks on a Dask cluster (with --merge or --embeddings: those stages): tcp://host:port, "
                        "a scheduler file, or local:N (N worker processes here); see docs/scaling.md")
    p.add_argument("--merge", nargs="+", metavar="SHARD.h5", help="join shard stores into -o")
    p.add_argument("--virtual", action="store_true",
                   help="with --merge: link the shards' arrays as HDF5 virtual datasets instead of copying "
                        "them (the shard files must then stay where they are)")
    p.add_argument("--pca-standardise", action="store_true",
                   help="scale each embedding dimension to unit variance before the PCA (for feature "
                        "tables whose columns have different units)")
    p.add_argument("--features", choices=["auto", "all", "none"], default="auto",
                   help="also write raw-pixel PCA and morphology features from the cutouts, for the loop to "
                        "choose among by cross-validation (auto: morphology only up to 200,000 objects)")
    p.add_argument("--views", type=int, choices=[1, 4, 8],
                   help="average the encoder's embedding over this many views of each stamp: 8 = its "
                        "rotations by 90 degrees and their mirror images (the default: a galaxy and its "
                        "rotated copy embed alike), 4 = the rotations, 1 = as it is (8 times faster)")
    p.set_defaults(run=_run_embed)


def _run_embed(args) -> int:
    from .explore.pipeline import EmbedConfig

    given = {k: v for k, v in (("umap_neighbors", args.umap_neighbors), ("umap_min_dist", args.umap_min_dist),
                               ("views", args.views)) if v is not None}     # else EmbedConfig's defaults
    cfg = EmbedConfig(batch_size=args.batch_size, device=args.device, pca_variance=args.pca_variance,
                      projection=args.projection, seed=args.seed,
                      pca_standardise=args.pca_standardise, features=args.features, **given).validate()
    if args.virtual and not args.merge:
        raise ConfigError("--virtual only applies to --merge")
    if args.shard and (args.merge or args.embeddings):
        raise ConfigError("--shard splits encoder embedding only (not --merge or --embeddings)")
    if args.cluster and args.shard:
        raise ConfigError("--cluster embeds every row on the cluster; it does not combine with --shard",
                          hint="drop --shard (shards are for machines that share no scheduler)")
    if args.merge or args.embeddings:
        # the embeddings are read here; the stages over every object run on --cluster's workers
        with _on_cluster(args) as client:
            if client is not None:
                from .explore.cluster import describe

                cfg.cluster = describe(client)
            report = _embed_merge_or_file(args, cfg)
    else:
        if not args.cutouts or not args.run_dir:
            raise ConfigError("embed needs CUTOUTS.h5 and --run RUN_DIR (or --embeddings FILE, or --merge)")
        from .ssl.embed import embed_with_encoder

        if args.cluster:
            from .explore.cluster import connect, describe, scoring_on

            with connect(args.cluster, [args.cutouts, args.run_dir]) as client, scoring_on(client):
                cfg.cluster = describe(client)
                report = embed_with_encoder(args.cutouts, args.run_dir, args.output, cfg, client=client)
        else:
            report = embed_with_encoder(args.cutouts, args.run_dir, args.output, cfg, shard=args.shard)
    _say(args, report.summary())
    return 0


def _embed_merge_or_file(args, cfg):
    """``embed --merge`` or ``embed --embeddings``: the pipeline's report."""
    if args.merge:
        from .explore.merge import merge_shards

        return merge_shards(args.merge, args.output, config=cfg, virtual=args.virtual)
    from .explore.external import ExternalEmbeddings, embed_from_file

    if args.no_cutouts and args.cutouts:
        raise ConfigError("give either CUTOUTS.h5 or --no-cutouts, not both")
    if not args.no_cutouts and not args.cutouts:
        raise ConfigError("no cutouts file given", hint="pass CUTOUTS.h5, or --no-cutouts with --catalog")
    src = ExternalEmbeddings(path=args.embeddings, dataset=args.dataset, id_dataset=args.id_dataset,
                             id_column=args.id_column, feature_columns=args.feature_columns,
                             allow_missing=args.allow_missing, catalog=args.catalog)
    return embed_from_file(None if args.no_cutouts else args.cutouts, src, args.output, cfg)


def _add_info(sub) -> None:
    p = sub.add_parser("info", help=COMMANDS["info"], description=COMMANDS["info"])
    p.add_argument("path", metavar="FILE.h5", help="a cutouts file or an embedding store")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=_run_info)


def _run_info(args) -> int:
    import json

    from .info import describe, format_description

    info = describe(args.path)
    print(json.dumps(info, indent=2, default=str) if args.json else format_description(info))
    return 0


def _add_labels(sub) -> None:
    p = sub.add_parser("labels", help=COMMANDS["labels"], description=COMMANDS["labels"])
    actions = p.add_subparsers(dest="labels_action", metavar="ACTION", parser_class=_Parser, required=True)
    e = actions.add_parser("export", help="write every event (scores, notes, exclusions, undos) as CSV or JSON",
                           description="write every event of STORE.h5.labels.sqlite as CSV or JSON (a backup "
                                       "that needs no -wal; values exactly as recorded)")
    e.add_argument("store", metavar="STORE.h5")
    e.add_argument("output", metavar="EVENTS.csv|EVENTS.json")
    e.add_argument("--format", choices=["csv", "json"], help="default: from the file name")
    e.set_defaults(run=_run_labels_export)
    i = actions.add_parser("import", help="merge events from exports or other journals (idempotent)",
                           description="merge the events of `labels export` files or of other journals "
                                       "(.sqlite) into STORE.h5's journal; events already there are skipped")
    i.add_argument("store", metavar="STORE.h5")
    i.add_argument("sources", nargs="+", metavar="EVENTS.csv|EVENTS.json|OTHER.labels.sqlite")
    i.add_argument("--format", choices=["csv", "json", "sqlite"], help="default: from each file name")
    i.set_defaults(run=_run_labels_import)
    c = actions.add_parser("check", help="check the journal (SQLite integrity_check), count events per user",
                           description="check STORE.h5's journal (or a JOURNAL.sqlite) with SQLite's integrity "
                                       "check, read-only; print the events per user and the last event. "
                                       "Exit 0 when healthy, 2 (one line) when damaged")
    c.add_argument("journal", metavar="STORE.h5|JOURNAL.sqlite")
    c.set_defaults(run=_run_labels_check)
    r = actions.add_parser("recover", help="copy every readable event of a damaged journal into a new one",
                           description="read a damaged journal (through a copy; it is never changed) and write "
                                       "every event that can still be read into a new journal, saying which "
                                       "events were lost")
    r.add_argument("journal", metavar="STORE.h5|JOURNAL.sqlite")
    r.add_argument("-o", "--output", required=True, metavar="NEW.sqlite", help="the new journal (must not exist)")
    r.set_defaults(run=_run_labels_recover)


def _run_labels_export(args) -> int:
    from .labels import LabelJournal
    from .labels.journal import write_events

    with LabelJournal.for_store(args.store, readonly=True) as journal:
        if not journal.path.exists():
            raise ConfigError("no label journal beside this store", journal.path,
                              "label some objects with `galexplorer open` first")
        events = journal.events()
    write_events(events, args.output, args.format)
    _say(args, f"wrote {len(events)} events to {args.output}")
    return 0


def _run_labels_import(args) -> int:
    from pathlib import Path

    from .labels import LabelJournal
    from .labels.journal import read_events

    if not Path(args.store).is_file():
        raise ConfigError("no such store", args.store, "give the STORE.h5 whose journal receives the events")
    with LabelJournal.for_store(args.store) as journal:
        for source in args.sources:
            added, present = journal.import_events(read_events(source, args.format), source)
            _say(args, f"{source}: {added} events added, {present} already present")
    return 0


def _run_labels_check(args) -> int:
    from .errors import LabelError
    from .labels.recover import check_journal, recover_hint

    found = check_journal(args.journal)
    if not found.ok:
        raise LabelError(found.damage(), found.path, recover_hint(found.path))
    print(found.summary())
    return 0


def _run_labels_recover(args) -> int:
    from .labels.recover import recover_journal

    rec = recover_journal(args.journal, args.output)
    _say(args, rec.summary())
    _say(args, f"next: move {rec.source} aside (keep it) and put {rec.output} in its place, "
               "or merge it into another journal with `galexplorer labels import`")
    return 0


def _add_open(sub) -> None:
    p = sub.add_parser("open", help=COMMANDS["open"], description=COMMANDS["open"])
    p.add_argument("store", nargs="?", metavar="STORE.h5")
    p.add_argument("--user", help="name recorded with your labels (default: your login)")
    p.add_argument("--screenshot", metavar="FILE.png", help="render the window after loading, save it, exit")
    p.set_defaults(run=_run_open)


def _run_open(args) -> int:
    from .gui.app import run_app

    return run_app(args.store, user=args.user, screenshot=args.screenshot)


def _add_loop_options(p) -> None:
    """The loop options of rank and simulate: None when not given (the preset's or the default applies)."""
    p.add_argument("--preset", metavar="NAME",
                   help="a shipped set of loop options (`galexplorer presets` lists them), e.g. loop-hedge; "
                        "the options given here win over it")
    p.add_argument("--scorer", choices=SCORERS, help=f"default {LoopConfig.scorer}")
    p.add_argument("--acquisition", choices=ACQUISITIONS, help=f"default {LoopConfig.acquisition}")
    p.add_argument("--xi", type=float, help=f"exploration trade-off of expected improvement (default {LoopConfig.xi:g})")
    p.add_argument("--pca-components", type=_positive_int, metavar="K",
                   help="learn on at most K leading principal components of the embedding, those above its "
                        "noise floor (e.g. 32 with --feature-scaling per-component; default: the components "
                        "that explain 95%% of the variance)")
    p.add_argument("--feature-scaling", choices=FEATURE_SCALINGS,
                   help=f"scale the components with one factor, keeping the PCA's geometry (global), or each "
                        f"to unit variance (per-component) (default {LoopConfig.feature_scaling})")
    p.add_argument("--representation", choices=REPRESENTATIONS,
                   help="what the scorer learns on: auto (the default: chosen at each refit by cross-validation "
                        "on the labels), or always the embedding, morphology, pixels, combined, or the "
                        "embedding's wide view (wide; combined-wide beside the morphology)")
    p.add_argument("--widen-after", type=_positive_int, metavar="N",
                   help="with --representation auto: once N labels are finds, learn by default on the "
                        "embedding's wide view (combined-wide; default: never)")
    p.add_argument("--cold-start", choices=tuple(COLD_STARTS),
                   help=f"until the first find: {DEFAULT_COLD_START} (the default: every pick by the acquisition) "
                        "or random-share (a growing share of each batch drawn at random)")


def _loop_config(args, **options) -> LoopConfig:
    from .active.config import loop_config

    given = {k: getattr(args, k) for k in ("scorer", "acquisition", "xi", "pca_components", "feature_scaling",
                                           "representation", "widen_after", "cold_start")}
    return loop_config({**given, **options}, args.preset)


def _add_rank(sub) -> None:
    p = sub.add_parser("rank", help=COMMANDS["rank"], description=COMMANDS["rank"])
    p.add_argument("store", metavar="STORE.h5")
    _add_loop_options(p)
    p.add_argument("--user", help="rank with this user's labels only (default: consensus of all)")
    p.add_argument("--knn-k", type=_positive_int, metavar="N",
                   help=f"neighbours of the knn label transfer (default {LoopConfig.knn_k})")
    p.add_argument("--interesting-above", type=float, metavar="X",
                   help="a label >= X is a find (aad/pine anomalies, the portfolio's hits; "
                        f"default {LoopConfig.interesting_above:g})")
    _add_cluster_option(p, "score every object (the GP's mean and std) in row blocks")
    p.set_defaults(run=_run_rank)


def _add_cluster_option(p, what: str) -> None:
    p.add_argument("--cluster", metavar="ADDRESS",
                   help=f"{what} on a Dask cluster: tcp://host:port, a scheduler file, or local:N (N worker "
                        "processes here); see docs/scaling.md")


@contextlib.contextmanager
def _on_cluster(args):
    """The stages that stream over every object run on ``--cluster``'s workers inside this block."""
    if not getattr(args, "cluster", None):
        yield None
        return
    from .explore.cluster import connect, describe, scoring_on

    with connect(args.cluster) as client, scoring_on(client):
        log.info("scoring on the Dask cluster %s", describe(client))
        yield client


def _run_rank(args) -> int:
    from .active.ranking import rank_store

    config = _loop_config(args, knn_k=args.knn_k, interesting_above=args.interesting_above)
    with _on_cluster(args):
        report = rank_store(args.store, config, user=args.user)
    _say(args, report.summary())
    return 0


def _add_export(sub) -> None:
    p = sub.add_parser("export", help=COMMANDS["export"], description=COMMANDS["export"])
    p.add_argument("store", metavar="STORE.h5")
    p.add_argument("-o", "--output", metavar="ranked.csv", help="the table as CSV or VOTable (.xml)")
    p.add_argument("--hats", metavar="FOLDER",
                   help="(also) write the table as a HATS catalogue: Parquet partitioned by HEALPix pixel, "
                        "for LSDB to open and cross-match (needs the lsdb package: pip install "
                        "\"galexplorer[hats]\"; see docs/scaling.md)")
    p.add_argument("--top", type=_positive_int, metavar="N", help="only the N best-ranked objects")
    p.add_argument("--format", choices=["csv", "votable"], help="default: from the file extension")
    p.add_argument("--spreadsheet-safe", action="store_true",
                   help="CSV for a spreadsheet: prefix ' to text starting with = + - @ (default: values exact)")
    p.add_argument("--user", help="label columns from this user's labels (default: consensus of all)")
    p.add_argument("--explain", action="store_true",
                   help="add why each object ranks where it does: the prior (anomaly) part of its score and "
                        "what the labels add, the labelled objects that pull it most, its anomaly percentile "
                        "and nearest labelled neighbour (docs/active-learning.md)")
    _add_cluster_option(p, "format the table (and, without a saved ranking, score every object) in row blocks")
    p.set_defaults(run=_run_export)


def _run_export(args) -> int:
    from .export import export_store

    if not args.output and not args.hats:
        raise ConfigError("export needs -o ranked.csv, --hats FOLDER, or both")
    with _on_cluster(args):
        path, table = export_store(args.store, args.output, args.format, args.top, args.user,
                                   spreadsheet_safe=args.spreadsheet_safe, explain=args.explain, hats=args.hats)
    written = [p for p in (args.output, args.hats) if p]
    _say(args, f"wrote {len(table)} ranked objects ({table.meta.get('scorer')}, {table.meta.get('n_labels')} "
               f"label(s)) to {' and '.join(written)}\nprovenance: {', '.join(p + '.json' for p in written)}")
    return 0


def _add_simulate(sub) -> None:
    p = sub.add_parser("simulate", help=COMMANDS["simulate"], description=COMMANDS["simulate"])
    p.add_argument("store", metavar="STORE.h5")
    p.add_argument("--truth", required=True, metavar="COLUMN", help="catalogue column the oracle answers from")
    p.add_argument("--scale", type=float, default=float(MAX_SCORE),
                   help="map the column's range to 0..SCALE before rounding")
    p.add_argument("--interesting-above", type=float, metavar="X",
                   help="an object is interesting when its oracle score is >= X "
                        f"(default: {LoopConfig.interesting_above:g})")
    p.add_argument("--budget", type=_positive_int, default=200, help="labels the oracle gives")
    p.add_argument("--batch", type=_positive_int, help=f"labels between refits (default {LoopConfig.batch_size})")
    _add_loop_options(p)
    p.add_argument("--seeds", type=_positive_int, default=1, help="repeat with K seeds (random baseline, ties)")
    p.add_argument("-o", "--output", metavar="curve.csv", help="curve CSV (a PNG plot is written beside it)")
    p.add_argument("--compare", action="store_true",
                   help="run every scorer (and the default) with the same store and seeds; one table, one plot")
    p.add_argument("--scorers", metavar="A,B,...", help="with --compare: only these scorers (comma-separated)")
    p.add_argument("--refine-every", type=_positive_int, metavar="N",
                   help="refine the encoder on the labels so far after every N labels (as `galexplorer refine`) "
                        "and go on in the re-embedded store; the stores are temporary")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="for --refine-every")
    p.add_argument("--no-remaining", action="store_true",
                   help="skip the estimate of the interesting objects left after each refit (it needs every "
                        "object's std: seconds a refit at 10^6 objects)")
    _add_cluster_option(p, "score every object after each refit (the GP's mean and std) in row blocks")
    p.set_defaults(run=_run_simulate)


def _run_simulate(args) -> int:
    from .active.simulate import SimulateConfig, compare, simulate, write_compare, write_curve
    from .store import EmbeddingStore

    loop = _loop_config(args, batch_size=args.batch, interesting_above=args.interesting_above)
    above = loop.interesting_above
    cfg = SimulateConfig(truth=args.truth, scale=args.scale, interesting_above=above,
                         budget=args.budget, batch=loop.batch_size, seeds=args.seeds, loop=loop,
                         refine_every=args.refine_every or 0, remaining=not args.no_remaining)
    if args.refine_every and args.compare:
        raise ConfigError("--refine-every runs one loop; it does not combine with --compare")
    with _on_cluster(args), EmbeddingStore(args.store) as store:
        if args.refine_every:
            import tempfile

            from .refining import store_refiner
            from .ssl.refine import RefineConfig

            rcfg = RefineConfig(interesting_above=above, device=args.device)
            with tempfile.TemporaryDirectory(prefix="galexplorer-refine-") as work:
                refiner = store_refiner(work, config=rcfg, device=args.device)
                report = simulate(store, cfg, refine=refiner)
            if args.output:
                write_curve(report, args.output)
        elif args.compare:
            scorers = [s.strip() for s in args.scorers.split(",") if s.strip()] if args.scorers else None
            report = compare(store, cfg, scorers=scorers, seeds=args.seeds)
            if args.output:
                write_compare(report, args.output)
        else:
            report = simulate(store, cfg)
            if args.output:
                write_curve(report, args.output)
    _say(args, report.summary())
    return 0


def _add_refine(sub) -> None:
    p = sub.add_parser("refine", help=COMMANDS["refine"], description=COMMANDS["refine"] + ": the labels of "
                       "STORE.h5's journal teach its encoder (FixMatch-style pseudo-labels on the unlabelled "
                       "objects), then the cutouts are embedded again into -o with the same ids and journal; "
                       "a store of your own embeddings (embed --embeddings) has no encoder: a small head is "
                       "refined on the embeddings instead")
    p.add_argument("store", metavar="STORE.h5")
    p.add_argument("-o", "--output", required=True, metavar="STORE2.h5")
    p.add_argument("--cutouts", metavar="CUTOUTS.h5", help="default: the cutouts file the store was built from")
    p.add_argument("--run", dest="run_dir", metavar="RUN_DIR",
                   help="default: the run folder the store was embedded with")
    p.add_argument("--user", help="refine on this user's labels only (default: consensus of all)")
    p.add_argument("--epochs", type=_positive_int,
                   help="at most this many epochs (default 20 for an encoder, 100 for the head refined on a store "
                        "of your own embeddings; early stopping)")
    p.add_argument("--interesting-above", type=float, default=LoopConfig.interesting_above, metavar="X",
                   help=f"a label >= X is a find, the positive class (default {LoopConfig.interesting_above:g})")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue an interrupted refine into the same -o "
                   "(an encoder's; a head on your own embeddings takes seconds and starts again)")
    p.set_defaults(run=_run_refine)


def _run_refine(args) -> int:
    from .refining import head_config_from, refine_store
    from .ssl.refine import RefineConfig

    cfg = RefineConfig(interesting_above=args.interesting_above, seed=args.seed, device=args.device)
    head = head_config_from(cfg)
    if args.epochs:
        cfg.epochs = head.epochs = args.epochs
    report = refine_store(args.store, args.output, cutouts=args.cutouts, run=args.run_dir, config=cfg.validate(),
                          head_config=head.validate(), user=args.user, resume=args.resume)
    _say(args, report.summary())
    return 0


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help=COMMANDS["demo"], description=COMMANDS["demo"])
    p.add_argument("--out", metavar="DIR", help="where to build the demo (default: your user cache folder)")
    p.add_argument("--rebuild", action="store_true", help="start again instead of reusing what exists")
    p.add_argument("--no-gui", action="store_true", help="build the store, print the command to open it, stop")
    p.add_argument("--quick", action="store_true", help="a one-minute version (one short epoch) for testing")
    p.set_defaults(run=_run_demo)


def _run_demo(args) -> int:
    from .demo import build_demo

    t0 = time.monotonic()
    res = build_demo(args.out, rebuild=args.rebuild, quick=args.quick)
    _say(args, res.summary() + f"\n  total    {time.monotonic() - t0:.0f} s")
    if args.no_gui:
        return 0
    from .gui.app import has_display, run_app

    if not has_display():
        _say(args, "no display found, so the explorer was not opened; run the command above on a desktop")
        return 0
    return run_app(str(res.store))


# --------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="galexplorer",
                     description="Find rare galaxies among survey cutouts: self-supervised embeddings, "
                                 "a UMAP explorer with image tooltips, and Gaussian-process active learning.",
                     epilog="Run `galexplorer COMMAND --help` for a command's options. Docs: docs/ in the "
                            "source tree.")
    parser.add_argument("--version", action="version", version=f"galexplorer {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging and full tracebacks")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars or summaries")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for add in (_add_ingest, _add_train, _add_presets, _add_embed, _add_info, _add_labels, _add_open, _add_rank,
                _add_export,
                _add_simulate, _add_refine, _add_demo):
        add(sub)
    return parser


def _say(args, text: str) -> None:
    """Print a result summary to stdout unless --quiet."""
    if text and not getattr(args, "quiet", False):
        print(text, flush=True)


class _StderrHandler(logging.StreamHandler):
    """Logs to whatever ``sys.stderr`` is at the time of each record (not at set-up), so that
    redirecting or capturing stderr later (pytest, a GUI) never writes to a closed stream."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # set by logging.StreamHandler.__init__; always follow sys.stderr
        pass


def _setup_logging(verbose: bool, quiet: bool) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s" if verbose
                                           else "galexplorer: %(message)s"))
    root = logging.getLogger("galexplorer")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # global flags may also follow the subcommand (`galexplorer ingest ... -v`)
    argv = list(sys.argv[1:] if argv is None else argv)
    flags = {"-v": "--verbose", "--verbose": "--verbose", "-q": "--quiet", "--quiet": "--quiet"}
    pre = [flags[a] for a in argv if a in flags]
    argv = pre + [a for a in argv if a not in flags]
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    _setup_logging(args.verbose, args.quiet)
    # bars only on a terminal (or when asked): logs and pipes get the per-stage log lines instead
    bars = os.environ.get("GALEXPLORER_PROGRESS", "auto")
    progress.configure(enabled=not args.quiet and (bars == "1" or (bars == "auto" and sys.stderr.isatty())))
    prog = f"galexplorer {args.command}"
    t0 = time.monotonic()
    try:
        code = args.run(args)
    except GalexplorerError as exc:
        if args.verbose:
            log.exception("%s", exc)
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; nothing half-written was left behind", file=sys.stderr)
        return 130
    except MemoryError:
        print(f"{prog}: error: out of memory; use a smaller --batch-size or fewer objects", file=sys.stderr)
        return 2
    except OSError as exc:
        if args.verbose:
            log.exception("%s", exc)
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(f"{prog}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: say so, keep it to one line unless --verbose
        if args.verbose:
            log.exception("internal error")
        print(f"{prog}: internal error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
              " (this is a bug; rerun with --verbose and report the traceback)", file=sys.stderr)
        return 1
    log.debug("%s finished in %.1f s", prog, time.monotonic() - t0)
    return int(code or 0)


