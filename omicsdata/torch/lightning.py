"""``StreamDataModule``: the block-shuffled stream as a Lightning ``LightningDataModule``.

Lightning is an optional extra (``pip install omicszoo[lightning]``); it is
imported when this module is, never by ``omicsdata.torch`` itself.

>>> from omicsdata.torch.lightning import StreamDataModule
>>> dm = StreamDataModule("demo-pancancer", batch_size=256, targets=["cancer_type"], seed=0)
>>> lightning.pytorch.Trainer(max_epochs=10).fit(model, datamodule=dm)

Each split is one :func:`omicsdata.torch.stream`; every training epoch
iterates it anew, which advances its epoch (a new shuffle), and each epoch
serves every row of the split once across workers and DDP ranks (the ranks
come from ``torch.distributed``, which Lightning initialises). The next
training epoch is kept in the checkpoint (``state_dict``), so a resumed run
continues the sequence of shuffles.
"""
from __future__ import annotations

from ..errors import OmicsDataError
from .stream import Stream, stream


class LightningMissingError(OmicsDataError, ImportError):
    """Lightning is not installed (the optional extra ``omicszoo[lightning]``)."""


def _datamodule_base():
    try:
        from lightning.pytorch import LightningDataModule
    except ImportError:
        try:
            from pytorch_lightning import LightningDataModule
        except ImportError:
            return None
    return LightningDataModule


_Base = _datamodule_base()


class StreamDataModule(_Base or object):  # type: ignore[misc]
    """Train/val/test/predict streams of one dataset for ``Trainer.fit(model, datamodule=dm)``.

    ``data``: what :func:`omicsdata.torch.stream` takes (dataset name, store
    path/URL, opened store, MuData/AnnData). ``*_split``: the ``obs["split"]``
    value each stage reads (None skips that stage; ``predict_split`` defaults
    to ``test_split``). Training shuffles (``shuffle``, ``seed``); the other
    stages read in store order. Other keyword arguments (``modalities``,
    ``targets``, ``num_workers``, ``densify``, ``buffer_size``, ``drop_last``,
    ``device``, ...) go to every stream. Batches are dicts of tensors;
    ``classes`` maps categorical targets to their class names.
    """

    def __init__(self, data, batch_size: int = 256, *, train_split="train", val_split="val", test_split="test",
                 predict_split=None, shuffle: bool = True, seed: int = 0, **stream_kw):
        if _Base is None:
            raise LightningMissingError("omicsdata.torch.lightning.StreamDataModule needs Lightning: "
                                        "pip install 'omicszoo[lightning]' (or lightning)")
        super().__init__()
        self.data = data
        self.batch_size = int(batch_size)
        self.splits = {"train": train_split, "val": val_split, "test": test_split,
                       "predict": test_split if predict_split is None else predict_split}
        self.shuffle, self.seed = bool(shuffle), int(seed)
        self.stream_kw = dict(stream_kw)
        self._streams: dict[str, Stream] = {}
        self._train_epoch = 0

    def stream(self, stage: str) -> Stream:
        """The stream of ``stage`` ("train", "val", "test", "predict"), made on first use."""
        if stage not in self.splits:
            raise OmicsDataError(f"stage {stage!r} is not one of {sorted(self.splits)}")
        if self.splits[stage] is None:
            raise OmicsDataError(f"StreamDataModule: no split for stage {stage!r} ({stage}_split=None)")
        if stage not in self._streams:
            train = stage == "train"
            s = stream(self.data, split=self.splits[stage], batch_size=self.batch_size,
                       shuffle=self.shuffle and train, seed=self.seed, **self.stream_kw)
            if train:
                s.set_epoch(self._train_epoch)
            self._streams[stage] = s
        return self._streams[stage]

    @property
    def classes(self) -> dict[str, list[str]]:
        """Class names of each categorical target (from the first split that is set)."""
        stage = next(k for k, v in self.splits.items() if v is not None)
        return self.stream(stage).classes

    def train_dataloader(self) -> Stream:
        """The training stream (an ``IterableDataset``; each new iteration is the next epoch)."""
        return self.stream("train")

    def val_dataloader(self):
        """The validation stream (store order), or ``[]`` when ``val_split`` is None."""
        return [] if self.splits["val"] is None else self.stream("val")

    def test_dataloader(self) -> Stream:
        """The test stream (store order)."""
        return self.stream("test")

    def predict_dataloader(self) -> Stream:
        """The predict stream (store order)."""
        return self.stream("predict")

    def state_dict(self) -> dict:
        """The next training epoch (saved in Lightning checkpoints)."""
        s = self._streams.get("train")
        return {"next_train_epoch": int(s._next_epoch if s is not None else self._train_epoch)}

    def load_state_dict(self, state_dict: dict) -> None:
        """Continue the training shuffles from a checkpoint's ``next_train_epoch``."""
        self._train_epoch = int(state_dict.get("next_train_epoch", 0))
        if "train" in self._streams:
            self._streams["train"].set_epoch(self._train_epoch)
