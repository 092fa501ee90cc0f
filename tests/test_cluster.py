"""``--cluster``: the encoder run on a LocalCluster of two worker processes gives the same store as
one process, survives a killed worker, and bad clusters are one-line errors (exit 2)."""

from __future__ import annotations

import os
import shutil
import signal

import numpy as np
import pytest

pytest.importorskip("distributed")
torch = pytest.importorskip("torch")

from galexplorer.cli import main  # noqa: E402
from galexplorer.errors import ConfigError  # noqa: E402
from galexplorer.explore import cluster  # noqa: E402
from galexplorer.explore.pca import CovarianceAccumulator  # noqa: E402
from galexplorer.info import describe as describe_file  # noqa: E402
from galexplorer.ssl import embed as ssl_embed  # noqa: E402
from galexplorer.ssl.config import TrainConfig  # noqa: E402
from galexplorer.ssl.trainer import train  # noqa: E402
from galexplorer.store import CutoutStore, EmbeddingStore  # noqa: E402


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, xdf_cutouts):
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("ssl") / "run"
    cfg = TrainConfig.from_dict(dict(method="byol", epochs=1, batch_size=16, image_size=24, device="cpu",
                                     proj_hidden=128, proj_dim=64, pred_hidden=128, monitor_objects=32))
    train(xdf_cutouts, run, cfg)
    return run


@pytest.fixture(scope="module")
def client():
    with cluster.connect("local:2") as c:
        yield c


def test_parse_address():
    assert cluster.parse_address("local:3") == ("local", 3)
    assert cluster.parse_address("tcp://node1:8786") == ("tcp", "tcp://node1:8786")
    for bad in ("local:0", "local:x", "no-such-scheduler-file.json"):
        with pytest.raises(ConfigError, match="--cluster"):
            cluster.parse_address(bad)


def test_unreachable_scheduler_is_one_line_exit_2(monkeypatch, tmp_path, capsys, xdf_cutouts, run_dir):
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 1)
    code = main(["-q", "embed", str(xdf_cutouts), "--run", str(run_dir), "-o", str(tmp_path / "s.h5"),
                 "--cluster", "tcp://127.0.0.1:9"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "cannot reach the Dask scheduler" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "s.h5").exists()


def test_workers_that_cannot_read_the_cutouts_are_named(client, tmp_path):
    with pytest.raises(ConfigError, match="Dask worker .*cannot read .*mounts"):
        cluster.check_workers(client, [tmp_path / "not-there.h5"])


def test_worker_without_galexplorer_is_a_clear_error(client, monkeypatch):
    monkeypatch.setattr(client, "run", lambda *a, **k: {"tcp://w1": "galexplorer is not installed"})
    with pytest.raises(ConfigError, match="tcp://w1: galexplorer is not installed; install galexplorer"):
        cluster.check_workers(client)


def _single(run_dir, cut, a, b, views=1):
    enc, _ = ssl_embed.load_encoder(run_dir, "cpu", views)
    out = np.empty((b - a, enc.dim), np.float32)
    ssl_embed.encode_rows(enc, cut, a, b, out, batch_size=16)
    return out


@pytest.mark.slow
def test_cluster_embedding_equals_one_process_even_with_a_worker_killed(client, run_dir, xdf_cutouts):
    import json
    sha = json.loads((run_dir / "encoder.json").read_text())["sha256"]
    victim = sorted(client.scheduler_info()["workers"])[0]
    victim_pid = client.run(os.getpid, workers=[victim])[victim]

    class KillOnFirstWrite(np.ndarray):
        killed = False

        def __setitem__(self, key, value):
            if not KillOnFirstWrite.killed:
                KillOnFirstWrite.killed = True
                os.kill(victim_pid, signal.SIGKILL)      # the other blocks are in flight
            super().__setitem__(key, value)

    with CutoutStore(xdf_cutouts) as cut:
        ref = _single(run_dir, cut, 4, 44, views=8)      # the workers average the same 8 views
        out = np.zeros_like(ref).view(KillOnFirstWrite)
        acc = ssl_embed.encode_rows_on_cluster(client, run_dir, sha, cut, 4, 44, out, batch_size=16,
                                               device="cpu", block_rows=5, views=8)
    assert KillOnFirstWrite.killed and victim not in client.scheduler_info()["workers"]
    np.testing.assert_allclose(np.asarray(out), ref, rtol=1e-5, atol=1e-6)
    one = CovarianceAccumulator(ref.shape[1])      # the workers' merged moments = one pass here
    one.add(np.asarray(out))
    assert acc.n == 40
    np.testing.assert_allclose(acc.mean(), one.mean(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(acc.covariance(), one.covariance(), rtol=1e-7, atol=1e-9)


@pytest.mark.slow
def test_embed_cli_on_a_cluster_equals_one_process(client, run_dir, xdf_cutouts, tmp_path):
    one, two = tmp_path / "one.h5", tmp_path / "two.h5"
    common = ["-q", "embed", str(xdf_cutouts), "--run", str(run_dir), "--projection", "pca", "--device", "cpu",
              "--batch-size", "16"]
    assert main(common + ["-o", str(one)]) == 0
    assert main(common + ["-o", str(two), "--cluster", client.scheduler.address]) == 0   # the tcp:// path
    with EmbeddingStore(one) as a, EmbeddingStore(two) as b:
        assert list(a.ids) == list(b.ids)
        np.testing.assert_allclose(b.load_embeddings(), a.load_embeddings(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(np.abs(b.file["pca"][:]), np.abs(a.file["pca"][:]), rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(b.dataset_attrs("pca")["explained_variance_ratio"],
                                   a.dataset_attrs("pca")["explained_variance_ratio"], rtol=1e-6)
    info = describe_file(two)
    assert info["cluster"].endswith("2 workers") and describe_file(one)["cluster"] is None
    shutil.rmtree(tmp_path, ignore_errors=True)
