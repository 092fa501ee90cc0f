"""Bad ``--cluster`` addresses and workers: one line naming the fix, exit code 2 (issue #25)."""

from __future__ import annotations

import json

import pytest
from active_synthetic import planted, restore_cli_logging, write_store

distributed = pytest.importorskip("distributed")

from galexplorer.cli import main  # noqa: E402
from galexplorer.explore import cluster  # noqa: E402

_cli_logging = pytest.fixture(autouse=True)(restore_cli_logging)

HIDE = '''"""Dask worker preload: galexplorer cannot be imported here (a worker without it installed)."""
import sys


class _Hide:
    def find_spec(self, name, path=None, target=None):
        if name == "galexplorer" or name.startswith("galexplorer."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _Hide())
for mod in [m for m in sys.modules if m == "galexplorer" or m.startswith("galexplorer.")]:
    del sys.modules[mod]
'''


@pytest.fixture
def store(tmp_path):
    emb, _, truth = planted(100)
    return str(write_store(tmp_path / "s.h5", emb, {"truth": truth}))


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    ours = [line for line in err.splitlines() if line.startswith("galexplorer ")]
    assert len(ours) == 1, err
    return ours[0]


def test_missing_scheduler_file(store, tmp_path, capsys):
    code = main(["rank", store, "--cluster", str(tmp_path / "scheduler.json")])
    line = _error(capsys)
    assert code == 2 and "no such scheduler file" in line and "dask scheduler --scheduler-file" in line


def test_stale_scheduler_file(store, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 1)
    (tmp_path / "scheduler.json").write_text(json.dumps({"address": "tcp://127.0.0.1:9"}))
    code = main(["export", store, "-o", str(tmp_path / "r.csv"), "--cluster", str(tmp_path / "scheduler.json")])
    line = _error(capsys)
    assert code == 2 and "cannot reach the Dask scheduler" in line and "dask scheduler` is running" in line
    assert not (tmp_path / "r.csv").exists()


@pytest.mark.parametrize("content", ["not json", json.dumps({"port": 1})])
def test_damaged_scheduler_file(store, tmp_path, capsys, content):
    (tmp_path / "scheduler.json").write_text(content)
    code = main(["rank", store, "--cluster", str(tmp_path / "scheduler.json")])
    line = _error(capsys)
    assert code == 2 and "not a Dask scheduler file" in line and "scheduler.json" in line


def test_worker_without_galexplorer(store, tmp_path, capsys):
    hide = tmp_path / "hide_galexplorer.py"
    hide.write_text(HIDE)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  preload=[str(hide)]) as lc:
        code = main(["simulate", store, "--truth", "truth", "--budget", "10", "--cluster", lc.scheduler_address])
    line = _error(capsys)
    assert code == 2 and "a Dask worker cannot import galexplorer" in line
    assert "install galexplorer (the same version) in the workers' environment" in line
