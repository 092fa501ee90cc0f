"""checkpoint-best.pt and encoder.pt follow the label-free measure (view retrieval), not the loss."""

from __future__ import annotations

import csv
import json

import torch

from galexplorer.ssl import trainer as trainer_mod
from galexplorer.ssl.checkpoint import load_checkpoint
from galexplorer.ssl.config import TrainConfig
from galexplorer.ssl.trainer import train, view_retrieval

TINY = dict(epochs=3, batch_size=16, image_size=16, device="cpu", proj_hidden=64, proj_dim=32, pred_hidden=64,
            monitor_objects=48, stats_objects=48, seed=0, method="simclr")


def _rows(run):
    with open(run / "metrics.csv") as f:
        return list(csv.DictReader(f))


def _backbone(state):
    return {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}


def test_best_epoch_follows_view_retrieval_not_loss_or_knn(tmp_path, xdf_cutouts, monkeypatch):
    """Scripted retrieval values 0.2, 0.9, 0.5: epoch 2 must be kept, though epoch 3 is the latest."""
    real = trainer_mod.view_retrieval
    scripted = [0.2, 0.9, 0.5]
    seen = iter(scripted)

    def fake(backbone, views, originals):
        real(backbone, views, originals)   # the real computation runs; its value is replaced
        return next(seen)

    monkeypatch.setattr(trainer_mod, "view_retrieval", fake)
    run = tmp_path / "run"
    rep = train(xdf_cutouts, run, TrainConfig.from_dict({**TINY, "eval_column": "kind"}))
    rows = _rows(run)
    assert [float(r["view_retrieval"]) for r in rows] == scripted
    # --eval-column still reports kNN / probe every epoch, but does not choose the epoch
    assert all(r["knn_acc"] != "" and r["linear_acc"] != "" for r in rows)
    assert all(int(r["pca95"]) >= 1 and float(r["effective_rank"]) > 1 for r in rows)
    assert rep.best_epoch == 2 and "best epoch 2 by view retrieval" in rep.summary()
    ck_best = load_checkpoint(run / "checkpoint-best.pt")
    ck_last = load_checkpoint(run / "checkpoint-latest.pt")
    assert ck_best["epoch"] == 2 and ck_last["epoch"] == 3 and ck_best["best"]["epoch"] == 2
    meta = json.loads((run / "encoder.json").read_text())
    assert meta["epoch"] == 2 and meta["selected_by"] == "view_retrieval"
    enc = torch.load(run / "encoder.pt", weights_only=True)["state_dict"]
    want = _backbone(ck_best["model"])
    assert enc.keys() == want.keys()
    # the encoder is epoch 2's backbone, not the last epoch's
    flat = lambda s: torch.cat([v.float().flatten() for k, v in sorted(s.items()) if v.is_floating_point()])  # noqa: E731
    assert torch.equal(flat(enc), flat(want))
    assert not torch.equal(flat(enc), flat(_backbone(ck_last["model"])))


def test_view_retrieval_measures_invariance():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 8))
    x = torch.randn(40, 3, 2, 2)
    originals = net(x).detach().numpy()
    assert view_retrieval(net, x + 1e-4 * torch.randn_like(x), originals) == 1.0
    # views unrelated to their stamps are found at chance level
    assert view_retrieval(net, torch.randn(40, 3, 2, 2), originals) < 0.3
    assert net.training   # the mode is restored


def test_a_tie_in_view_retrieval_keeps_the_later_epoch(tmp_path, xdf_cutouts, monkeypatch):
    """A flat measure (the demo's retrieval sits at chance) must not pin the encoder to epoch 1."""
    real = trainer_mod.view_retrieval
    seen = iter([0.3, 0.3, 0.1])

    def fake(backbone, views, originals):
        real(backbone, views, originals)
        return next(seen)

    monkeypatch.setattr(trainer_mod, "view_retrieval", fake)
    run = tmp_path / "run"
    rep = train(xdf_cutouts, run, TrainConfig.from_dict(TINY))
    assert rep.best_epoch == 2
    assert load_checkpoint(run / "checkpoint-best.pt")["epoch"] == 2
    assert json.loads((run / "encoder.json").read_text())["epoch"] == 2
