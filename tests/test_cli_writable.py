"""Output folders are checked before any work, with advice the command can follow (issue #23,
defect 7). The tests run as root, for whom a permission bit blocks nothing: a folder "not
writable" is either a regular file in the way (the real mkdir failure) or ``os.access``
answering no for that one folder (the check the commands make)."""

from __future__ import annotations

import os

import pytest
from gui_stores import build_store

from galexplorer.active import ranking as ranking_module
from galexplorer.cli import main
from galexplorer.store.ranking import ranking_path


@pytest.fixture
def store(tmp_path):
    folder = tmp_path / "survey"
    folder.mkdir()
    return build_store(folder / "store.h5", 120, thumbnails=False)


def _deny_writing(monkeypatch, folder) -> None:
    """``os.access(folder, W_OK)`` is False, as for a user without write permission there."""
    real = os.access
    folder = os.path.realpath(folder)

    def access(path, mode, *a, **k):
        if mode & os.W_OK and os.path.realpath(path) == folder:
            return False
        return real(path, mode, *a, **k)

    monkeypatch.setattr(os, "access", access)


def _no_ranking(monkeypatch) -> None:
    def fail(*a, **k):
        raise AssertionError("ranked before checking the output")

    monkeypatch.setattr(ranking_module.ActiveLoop, "fit", fail)


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_export_checks_the_output_folder_before_ranking(store, tmp_path, monkeypatch, capsys):
    out = tmp_path / "ro"
    out.mkdir()
    _deny_writing(monkeypatch, out)
    _no_ranking(monkeypatch)
    assert main(["export", str(store), "-o", str(out / "ranked.csv")]) == 2
    err = _one_line(capsys)
    assert f"the folder {out} is not writable" in err and "choose an output path" in err
    assert list(out.iterdir()) == []
    # a file in the way of the output's folder: the same, before ranking
    (tmp_path / "blocker").write_text("")
    assert main(["export", str(store), "-o", str(tmp_path / "blocker" / "x" / "ranked.csv")]) == 2
    assert "a file is in the way" in _one_line(capsys)


def test_train_into_an_unwritable_place_names_the_folder(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "ro"
    blocker.write_text("")        # a regular file where the run folder's parent should be
    missing = tmp_path / "never-read.h5"   # checked before the cutouts are even opened
    assert main(["train", str(missing), "-o", str(blocker / "run")]) == 2
    err = _one_line(capsys)
    assert f"cannot create the folder {blocker / 'run'}" in err and "run folder (-o)" in err
    assert "Operation not permitted" not in err
    ro = tmp_path / "ro2"
    ro.mkdir()
    _deny_writing(monkeypatch, ro)
    assert main(["train", str(missing), "-o", str(ro)]) == 2
    assert f"the folder {ro} is not writable" in _one_line(capsys)


def test_rank_in_a_read_only_folder_gives_advice_rank_can_follow(store, monkeypatch, capsys):
    _deny_writing(monkeypatch, store.parent)
    _no_ranking(monkeypatch)
    assert main(["rank", str(store)]) == 2
    err = _one_line(capsys)
    assert f"the folder {store.parent} is not writable" in err
    assert "choose an output path" not in err            # rank has no output option
    assert "saved beside the store" in err and "rank the copy" in err and str(store.parent) in err
    assert not ranking_path(store).exists()
