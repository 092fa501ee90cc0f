"""The command-line contract: help, version, exit codes, one-line errors, info."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from galexplorer import __version__
from galexplorer.cli import COMMANDS, main
from galexplorer.labels import LabelJournal
from galexplorer.store import EmbeddingStoreWriter, ObjectTable


def run(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_help_lists_every_subcommand_on_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in ["ingest", "train", "embed", "info", "open", "rank", "export", "simulate", "demo"]:
        line = next(ln for ln in out.splitlines() if ln.strip().startswith(name + " "))
        assert COMMANDS[name] in line


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and __version__ in capsys.readouterr().out


def test_python_dash_m_entry_point():
    run_ = subprocess.run([sys.executable, "-m", "galexplorer", "--version"], capture_output=True, text=True)
    assert run_.returncode == 0 and __version__ in run_.stdout


def test_usage_error_is_one_line_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["ingest"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "required" in err


def test_no_command_prints_help_exit_2(capsys):
    assert main([]) == 2


@pytest.mark.parametrize("path_kind", ["missing", "text"])
def test_info_bad_file(tmp_path, capsys, path_kind):
    p = tmp_path / "x.h5"
    if path_kind == "text":
        p.write_text("not hdf5")
    code, out, err = run(["info", str(p)], capsys)
    assert code == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and str(p) in err
    if path_kind == "text":   # info takes either kind of file, and says so
        assert "not a cutouts file or embedding store" in err


def test_verbose_flag_anywhere(tmp_path, capsys):
    code, _, err = run(["info", str(tmp_path / "nope.h5"), "-v"], capsys)
    assert code == 2 and "no such file" in err


def test_info_cutouts_and_store(xdf_cutouts, tmp_path, capsys):
    code, out, _ = run(["info", str(xdf_cutouts)], capsys)
    assert code == 0 and "cutouts file" in out and "48" in out and "b, g, r" in out
    objects = ObjectTable(np.array(["a", "b", "c"], dtype=object), None, None)
    store = tmp_path / "s.h5"
    with EmbeddingStoreWriter(store, objects) as w:
        w.write("embeddings", np.ones((3, 5), np.float32), attrs={"method": "simclr"})
        w.write("projection", np.zeros((3, 2), np.float32), attrs={"method": "umap"})
        w.write("scores/anomaly", np.zeros(3, np.float32))
    with LabelJournal.for_store(store, user="u") as j:
        j.score("a", 4)
        j.score("b", 0)
    code, out, _ = run(["info", str(store)], capsys)
    assert code == 0
    assert "5-d (simclr)" in out and "umap" in out and "anomaly" in out
    assert "2 by 1 user(s)" in out
    code, out, _ = run(["info", str(store), "--json"], capsys)
    import json

    info = json.loads(out)
    assert info["labels"]["labels"] == 2 and info["embeddings"]["dim"] == 5


def test_internal_error_is_exit_1_without_traceback(monkeypatch, capsys, tmp_path):
    import galexplorer.info as info

    def boom(path):
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(info, "describe", boom)
    code, _, err = run(["info", str(tmp_path)], capsys)
    assert code == 1 and "internal error" in err and "Traceback" not in err


def test_pyproject_declares_tomli_for_python_310_and_pyvo():
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    deps = text.split("dependencies = [", 1)[1].split("]", 1)[0]
    assert re.search(r"""["']tomli[^"']*;\s*python_version\s*<\s*["']3\.11["']["']""", deps)
    assert re.search(r"""["']pyvo\b""", deps)
    assert "astropy.samp" not in text
