"""Training loops (issue 18): the stream as an IterableDataset that reshuffles each epoch by itself,
under a DataLoader and under Lightning; device errors; decoded class names."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, IterableDataset

import omicsdata as od
from omicsdata.errors import OmicsDataError


@pytest.fixture(scope="module")
def demo(demo_store):
    return demo_store, od.open_store(demo_store)


def _rows(m, split):
    return np.flatnonzero(m.obs["split"].astype(str).to_numpy() == split).tolist()


def _order(batches):
    return np.concatenate([b["index"].numpy() for b in batches])


def test_dataloader_over_stream_serves_every_row_once_and_reshuffles(demo):
    path, m = demo
    s = od.torch.stream(path, split="train", batch_size=16, seed=3, modalities=["protein"])
    assert isinstance(s, IterableDataset)
    dl = DataLoader(s, batch_size=None)
    epochs = [_order(list(dl)) for _ in range(2)]
    for e in epochs:
        assert sorted(e.tolist()) == _rows(m, "train")
    assert not np.array_equal(epochs[0], epochs[1])  # each new iteration is a new epoch
    assert s.epoch == 1


def test_auto_epoch_matches_explicit_set_epoch_and_explicit_wins(demo):
    path, _ = demo
    kw = dict(split="train", batch_size=16, seed=4, modalities=["protein"])
    auto = od.torch.stream(path, **kw)
    seq = [_order(auto) for _ in range(3)]
    ref = od.torch.stream(path, **kw)
    for e in (2, 0, 1):  # explicit epochs, out of order, reproduce the automatic ones
        ref.set_epoch(e)
        assert np.array_equal(_order(ref), seq[e])
    auto.set_epoch(0)  # wins for the next iteration, then counting resumes from it
    assert np.array_equal(_order(auto), seq[0])
    assert np.array_equal(_order(auto), seq[1])


def test_unshuffled_stream_keeps_store_order_every_epoch(demo):
    path, m = demo
    s = od.torch.stream(path, split="val", batch_size=16, shuffle=False, modalities=["protein"])
    assert _order(s).tolist() == _order(s).tolist() == _rows(m, "val")


def test_cuda_without_cuda_names_the_option(demo, monkeypatch):
    path, _ = demo
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(OmicsDataError, match=r"device='cuda'.*CUDA is not available.*device='cpu'"):
        od.torch.stream(path, split="train", device="cuda")
    with pytest.raises(OmicsDataError, match="device='gpu0'"):
        od.torch.stream(path, split="train", device="gpu0")


def test_classes_decode_batches_on_stream_and_map_dataset(demo):
    path, m = demo
    names = m.obs["cancer_type"].astype(str).to_numpy()
    s = od.torch.stream(path, split="train", batch_size=32, seed=0, targets=["cancer_type", "os_time"])
    assert set(s.classes) == {"cancer_type"}  # only categorical targets have class names
    assert sorted(s.classes["cancer_type"]) == sorted(set(names))
    assert s.target_classes == s.classes  # the earlier name stays
    for b in s:
        got = s.decode("cancer_type", b["cancer_type"])
        assert got == names[b["index"].numpy()].tolist()
    ds = od.torch.MultiOmicsDataset(path, split="test", modalities=["protein"], targets=["cancer_type"])
    assert ds.classes == s.classes
    b = ds.__getitems__(list(range(len(ds))))
    assert ds.decode("cancer_type", b["cancer_type"]) == names[b["index"].numpy()].tolist()
    with pytest.raises(OmicsDataError, match="os_time"):
        s.decode("os_time", [0])
    with pytest.raises(OmicsDataError, match="out of range"):
        ds.decode("cancer_type", [len(ds.classes["cancer_type"])])


def test_lightning_two_epochs_differ_and_each_serves_every_row_once(demo, tmp_path):
    pl = pytest.importorskip("lightning.pytorch", reason="Lightning not installed (optional extra omicszoo[lightning])")
    from omicsdata.torch.lightning import StreamDataModule

    path, m = demo

    class Recorder(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(m.mod["protein"].n_vars, 1)
            self.seen: dict[int, list] = {}

        def training_step(self, batch, i):
            self.seen.setdefault(self.current_epoch, []).extend(batch["index"].tolist())
            return self.lin(batch["protein"]).pow(2).mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=1e-3)

    dm = StreamDataModule(path, batch_size=16, seed=1, modalities=["protein"], targets=["cancer_type"],
                          val_split=None)
    model = Recorder()
    trainer = pl.Trainer(max_epochs=2, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(model, datamodule=dm)
    assert sorted(model.seen) == [0, 1]
    for e in (0, 1):
        assert sorted(model.seen[e]) == _rows(m, "train")
    assert model.seen[0] != model.seen[1]
    assert dm.classes == dm.stream("train").classes and len(dm.classes["cancer_type"]) > 1
    assert dm.state_dict() == {"next_train_epoch": 2}


def test_unconsumed_iterator_does_not_spend_an_epoch(demo):
    path, _ = demo
    s = od.torch.stream(path, split="train", batch_size=16, seed=6, modalities=["protein"])
    iter(s)  # e.g. an iterability check: never asked for a batch
    first = _order(s)
    s.set_epoch(0)
    assert np.array_equal(first, _order(s))
