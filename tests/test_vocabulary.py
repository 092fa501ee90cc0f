"""Each vocabulary is defined once (issue #24 item 2): the 0–5 scale, scorer and acquisition
names, the loop's defaults on the command line, HDF5 suffixes, every input format's suffixes
(data/registry.py). These tests grep the package for
stray copies, so a second definition fails here rather than drifting apart later."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "galexplorer"


def _sources():
    for path in sorted(PKG.rglob("*.py")):
        yield path.relative_to(PKG).as_posix(), path.read_text(encoding="utf-8")


# (what, pattern, the one module allowed to hold it)
STRAY = [
    ("the 0–5 scale as range(6)", r"range\(\s*6\s*\)", None),
    ("the 0–5 scale as a clip to 0, 5", r"clip\(.*,\s*0(\.0)?\s*,\s*5(\.0)?\s*\)", None),
    ("the top of the scale as a 5.0 default", r"(scale|top)\s*:\s*float\s*=\s*5(\.0)?\b", None),
    ("the acquisition names as a literal list", r"[\"']ei[\"'].*[\"']ucb[\"']", "active/registry.py"),
    ("the HDF5 suffixes", r"[\"']\.hdf5[\"']", "data/registry.py"),
    ("an input format's suffixes", r"[\"']\.(fits|fit|fts|fz|npy|parquet|pq|jpe?g|tiff?|vot|votable|ecsv|ipac|tbl)"
     r"(\.gz|\.fz)?[\"']", "data/registry.py"),
    ("the score bounds", r"MIN_SCORE\s*,\s*MAX_SCORE\s*=|MAX_SCORE\s*=\s*5", "label_scale.py"),
]


@pytest.mark.parametrize("what, pattern, home", STRAY, ids=[s[0] for s in STRAY])
def test_vocabulary_is_defined_once(what, pattern, home):
    rx = re.compile(pattern)
    found = [f"{name}:{i}" for name, text in _sources() for i, line in enumerate(text.splitlines(), 1)
             if rx.search(line) and name != home]
    assert not found, f"{what} written again outside {home or 'the registries'}: {found}"


def test_the_stray_check_finds_a_copy():
    """The grep above is not vacuous: it finds the copies this issue removed."""
    old = 'ACQUISITIONS = [("ei", "expected improvement"), ("ucb", "upper confidence bound")]\nfor s in range(6):'
    assert re.search(STRAY[0][1], old) and re.search(STRAY[3][1], old)
    suffixes = next(s[1] for s in STRAY if s[0] == "an input format's suffixes")
    for copy in ('NPY_EXT = (".npy",)', 'PARQUET_EXT = (".parquet", ".pq")', '    ".fits.gz": "fits",',
                 "IMAGE_SUFFIXES = ('.png', '.jpg')"):
        assert re.search(suffixes, copy), copy
    assert not re.search(suffixes, 'path.with_suffix(".png")')   # an output's name is not a reader's


def test_cli_defaults_are_the_loop_config_defaults():
    """rank and simulate leave unset options None and resolve them through loop_config (defaults <
    --preset < options), so without options they run LoopConfig's defaults."""
    from galexplorer.active.config import LoopConfig
    from galexplorer.cli import _loop_config, build_parser

    parser = build_parser()
    for command in ("rank", "simulate"):
        args = parser.parse_args([command, "s.h5"] + (["--truth", "t"] if command == "simulate" else []))
        cfg = _loop_config(args, interesting_above=args.interesting_above)
        for name in ("scorer", "acquisition", "xi", "feature_scaling", "interesting_above", "batch_size"):
            assert getattr(cfg, name) == getattr(LoopConfig, name), (command, name)
    args = parser.parse_args(["simulate", "s.h5", "--truth", "t"])
    assert _loop_config(args, batch_size=args.batch).batch_size == LoopConfig.batch_size


def test_scale_colours_keys_and_buttons_cover_the_scale():
    from galexplorer.gui.actions import SHORTCUTS
    from galexplorer.gui.colouring import SCORE_COLOURS
    from galexplorer.label_scale import SCORES

    assert len(SCORE_COLOURS) == len(SCORES)
    assert [a.action for a in SHORTCUTS if a.action.startswith("score_")] == [f"score_{s}" for s in SCORES]
