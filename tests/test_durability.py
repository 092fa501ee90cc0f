"""Every writer survives kill -9 at a random moment: the old file or the new one, never a torn one,
and no temporary left by a dead process survives the next write (store/atomic.py)."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from galexplorer.store.atomic import (
    remove_stale_temporaries,
    rename_into_place,
    temporaries,
    temporary_sibling,
)

N = 40

# A child that writes the same output again and again, version i = 0, 1, 2, ..., printing i once
# version i is in place; the parent kills it at a random moment and checks what is on disk.
SETUP = r'''
from pathlib import Path
import numpy as np
folder = Path(folder)
N = __N__
if kind == "ingest":
    from astropy.io import fits
    from galexplorer.data.ingest import IngestConfig, ingest
    (folder / "in").mkdir(exist_ok=True)
    for k in range(N):
        fits.writeto(folder / "in" / f"g{k:03d}.fits", np.full((20, 20), k + 1, np.float32), overwrite=True)
    write = lambda i: ingest([folder / "in"], folder / "cut.h5", IngestConfig(size=16, thumb_size=16))
elif kind == "embed":
    from galexplorer.explore.pipeline import EmbedConfig, build_store
    from galexplorer.store import ObjectTable
    ids = np.array([f"o{k}" for k in range(N)], dtype=object)
    base = np.random.default_rng(0).normal(size=(N, 4)).astype(np.float32)
    cfg = EmbedConfig(projection="pca", iforest_trees=5)
    write = lambda i: build_store(folder / "store.h5", objects=ObjectTable(ids, None, None), dim=4,
                                  fill=base + i, config=cfg)
elif kind == "checkpoint":
    import torch
    from galexplorer.ssl.checkpoint import save_checkpoint
    write = lambda i: save_checkpoint(folder, {"epoch": i, "w": torch.full((300, 300), float(i))}, best=True)
elif kind == "export":
    from galexplorer.active.ranking import RankedTable
    from galexplorer.export import write_ranked
    write = lambda i: write_ranked(RankedTable({"id": np.array([f"o{k}" for k in range(20 * N)], dtype=object),
                                                "version": np.full(20 * N, i)}, {"scorer": "gp"}),
                                   folder / "ranked.csv")
'''.replace("__N__", str(N))
CHILD = f"""
import sys
kind, folder = sys.argv[1], sys.argv[2]
{SETUP}
i = 0
while True:
    write(i)
    print(i, flush=True)
    i += 1
"""


def _check(kind: str, folder: Path, versions: set[int]) -> None:
    """The output is complete and is one of ``versions`` (all complete versions look alike for ingest)."""
    if kind == "ingest":
        from galexplorer.store import CutoutStore

        with CutoutStore(folder / "cut.h5") as cut:
            assert cut.n == N
            np.testing.assert_allclose(sorted(float(cut.images[k].max()) for k in range(N)), np.arange(1, N + 1),
                                       rtol=1e-5)
    elif kind == "embed":
        from galexplorer.store import EmbeddingStore

        base = np.random.default_rng(0).normal(size=(N, 4)).astype(np.float32)
        with EmbeddingStore(folder / "store.h5") as store:
            emb = store.embeddings[:]
            assert store.has("projection")
        k = int(round(float((emb - base).mean())))
        assert k in versions and np.allclose(emb, base + k, atol=1e-5)
    elif kind == "checkpoint":
        from galexplorer.ssl.checkpoint import BEST, LATEST, load_checkpoint

        for name in (LATEST, BEST):
            ck = load_checkpoint(folder / name)
            assert ck["epoch"] in versions and bool((ck["w"] == ck["epoch"]).all())
    elif kind == "export":
        from astropy.table import Table

        t = Table.read(folder / "ranked.csv", format="ascii.csv")
        assert len(t) == 20 * N and len(set(t["version"])) == 1 and int(t["version"][0]) in versions


@pytest.mark.parametrize("kind", ["ingest", "embed", "checkpoint", "export"])
def test_kill_9_at_a_random_moment_leaves_old_or_new_never_torn(tmp_path, kind):
    rng = random.Random(f"{kind}-{os.getpid()}")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, kind, str(tmp_path)], stdout=subprocess.PIPE,
                            text=True, env=env)
    first = proc.stdout.readline()            # version 0 is in place: from now on a kill is a crash
    assert first.strip() == "0", f"the {kind} writer did not start"
    time.sleep(rng.uniform(0.05, 0.6))        # a random moment of writing version i+1
    os.kill(proc.pid, signal.SIGKILL)
    rest = proc.communicate()[0].split()
    done = int(rest[-1]) if rest else 0
    _check(kind, tmp_path, {done, done + 1})
    # a temporary of the dead writer (planted if the kill left none) and one of another host
    out = {"ingest": "cut.h5", "embed": "store.h5", "checkpoint": "checkpoint-latest.pt",
           "export": "ranked.csv"}[kind]
    host = socket.gethostname().replace("-", "_")
    (tmp_path / f".{out}.tmp-{host}-{proc.pid}-deadbeef").write_bytes(b"half a file")
    elsewhere = tmp_path / f".{out}.tmp-otherhost-{proc.pid}-cafe0000"
    elsewhere.write_bytes(b"another machine's")
    assert any(t["stale"] for t in temporaries(tmp_path))
    # the next run: removes what dead writers of this host left, keeps the other host's file
    ns = {"kind": kind, "folder": str(tmp_path)}
    exec(SETUP, ns)
    ns["write"](1000)
    _check(kind, tmp_path, {1000})
    assert [Path(t["path"]) for t in temporaries(tmp_path)] == [elsewhere]


def test_rename_into_place_and_stale_rules(tmp_path):
    final = tmp_path / "x.h5"
    tmp = temporary_sibling(final)
    assert tmp.name.startswith(".x.h5.tmp-") and str(os.getpid()) in tmp.name
    tmp.write_bytes(b"new")
    final.write_bytes(b"old")
    rename_into_place(tmp, final)
    assert final.read_bytes() == b"new" and not tmp.exists()
    mine = temporary_sibling(final)           # this (live) process's temporary is never stale
    mine.write_bytes(b"in progress")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname().replace("-", "_")
    stale_dir = tmp_path / f".x.h5.staging-{host}-{dead.pid}-abc_12"
    stale_dir.mkdir()
    (stale_dir / "embeddings.npy").write_bytes(b"0" * 100)
    other_output = tmp_path / f".y.h5.tmp-{host}-{dead.pid}-00000000"
    other_output.write_bytes(b"y")
    found = {Path(t["path"]).name: t for t in temporaries(tmp_path)}
    assert found[stale_dir.name]["stale"] and found[stale_dir.name]["bytes"] == 100
    assert not found[mine.name]["stale"]
    assert remove_stale_temporaries(final) == [stale_dir]
    assert mine.exists() and other_output.exists()   # another output's leftovers wait for its next write


def test_info_reports_leftovers_beside_a_store(tmp_path, capsys):
    from active_synthetic import planted, write_store

    from galexplorer.cli import main

    emb, _, _ = planted(10)
    store = write_store(tmp_path / "s.h5", emb, {})
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname().replace("-", "_")
    (tmp_path / f".s.h5.tmp-{host}-{dead.pid}-1234abcd").write_bytes(b"x" * 2_000_000)
    assert main(["info", str(store)]) == 0
    out = capsys.readouterr().out
    assert f".s.h5.tmp-{host}-{dead.pid}-1234abcd (2.0 MB; process {dead.pid} is gone" in out
    assert main(["info", str(store), "--json"]) == 0
    assert '"stale": true' in capsys.readouterr().out
