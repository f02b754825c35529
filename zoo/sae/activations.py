"""Reading a hidden layer of a fitted zoo model without changing it: layer lookup, forward hook, batch stream.

The activations come from the zoo's own batch source (:func:`zoo.data.batches`)
through the model's fitted preprocessing (``est.preprocessor_``) and its
``forward`` - exactly the path ``predict`` takes - with a forward hook on the
chosen submodule of ``est.module_`` that records its output. The hook is
removed after every pass; the model's weights and modes are left as found.

Rows of an activation: the first ``B`` rows of the hooked output, ``B`` the
batch's sample count (a graph model that appends neighbour nodes after the
batch's own nodes, as torch_geometric's neighbour loaders do, is read
correctly); outputs with more than two dimensions are flattened per row.
"""
from __future__ import annotations

import hashlib
from contextlib import contextmanager

import numpy as np
import torch

from omicsdata.errors import SchemaMismatchError

from .. import data as zdata
from ..align import align_mudata
from ..inference import prepare_input


def resolve_layer(est, layer: str | None = None) -> tuple[str, torch.nn.Module]:
    """``(path, submodule)`` of the layer to read in ``est.module_``.

    ``layer`` is a module path (``"encoder"``, ``"encoder.3"``,
    ``"members.0.encoder"``). ``None``: the model's declared
    ``embedding_layer`` (an attribute of the estimator or of its module),
    else the shallowest submodule named ``embedding`` (CellGAT: the head's
    input), else ``encoder`` (SeNMo: the encoder output, the layer before the
    heads; an ensemble: its first member's).
    """
    module = est.module_
    name = layer or getattr(est, "embedding_layer", None) or getattr(module, "embedding_layer", None)
    named = dict(module.named_modules())
    for want in ("embedding", "encoder"):  # CellGAT: ``embedding`` (the head's input); SeNMo: ``encoder``
        if name is not None:
            break
        cands = [n for n in named if n == want or n.endswith("." + want)]
        name = min(cands, key=lambda n: (n.count("."), n)) if cands else None
    if name is None:
        raise SchemaMismatchError(
            f"{type(est).__name__}: no layer given and the model declares no 'embedding_layer' and has no "
            f"'embedding' or 'encoder' submodule; pass layer= one of {[n for n in named if n][:40]}")
    if name not in named or not name:
        raise SchemaMismatchError(f"{type(est).__name__}: layer {name!r} is not a submodule of the model; "
                                  f"known layers: {[n for n in named if n][:40]}")
    return name, named[name]


def model_fingerprint(est) -> str:
    """sha256 over the model's tensors (names, shapes, float32 bytes): which weights an SAE describes."""
    h = hashlib.sha256()
    for k, v in sorted(est.module_.state_dict().items()):
        t = v.detach().cpu()
        h.update(k.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update((t.float() if t.is_floating_point() else t).contiguous().numpy().tobytes())
    return h.hexdigest()


class _Capture:
    def __init__(self):
        self.out = None

    def __call__(self, mod, inp, out):
        t = out[0] if isinstance(out, (tuple, list)) else out
        if not torch.is_tensor(t):
            raise SchemaMismatchError(f"the hooked layer returns {type(out).__name__}, not a tensor")
        self.out = t


@contextmanager
def hooked(submodule: torch.nn.Module):
    """A forward hook on ``submodule`` for the block; yields the capture (``.out``: last output)."""
    cap = _Capture()
    handle = submodule.register_forward_hook(cap)
    try:
        yield cap
    finally:
        handle.remove()


def rows_of(act: torch.Tensor, n: int, layer: str) -> torch.Tensor:
    """The batch's own ``n`` rows of a hooked output, flattened to (n, d)."""
    if act.dim() == 1:
        act = act.unsqueeze(1)
    if act.shape[0] < n:
        raise SchemaMismatchError(f"layer {layer!r} gave {act.shape[0]} rows for a batch of {n} samples; "
                                  "choose a layer with one row per sample")
    return act[:n].reshape(n, -1)


def prepare(est, data, where: str):
    """``(mdata, modalities, alignment)``: the input with the model's store recipe applied, aligned by name."""
    mdata = prepare_input(est, data, where)
    alignment = align_mudata(est.schema_["modalities"], mdata, min_overlap=est.min_overlap, where=where)
    mods = [m for m, a in alignment.items() if a is not None]
    align = {m: a for m, a in alignment.items() if a is not None and not a.identity}
    return mdata, mods, align


class ActivationStream:
    """Iterates ``(index, activations)`` of ``est``'s layer over a raw batch source (no gradients)."""

    def __init__(self, est, submodule, layer: str, raw_source, align: dict):
        self.est, self.submodule, self.layer, self.raw, self.align = est, submodule, layer, raw_source, align

    def set_epoch(self, epoch: int) -> None:
        """New shuffle order of the underlying batch source."""
        self.raw.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.raw)

    def __iter__(self):
        est, module = self.est, self.est.module_
        was_training = module.training
        module.eval()
        try:
            with hooked(self.submodule) as cap:
                for raw in self.raw:
                    cap.out = None
                    with torch.no_grad():  # not around the yield: the consumer trains with gradients
                        inputs = est.preprocessor_(raw, self.align)
                        est.forward(module, inputs)
                    if cap.out is None:
                        raise SchemaMismatchError(f"layer {self.layer!r} did not run in {type(est).__name__}.forward")
                    idx = inputs["index"]
                    yield idx, rows_of(cap.out, int(idx.shape[0]), self.layer).detach().float()
        finally:
            module.train(was_training)


def stream(est, submodule, layer, mdata, mods, align, split=None, rows=None, batch_size=256, shuffle=False,
           seed=0, use_stream: bool | None = None) -> ActivationStream:
    """An :class:`ActivationStream` over ``split`` (or explicit ``rows``) of ``mdata``; ``use_stream`` None:
    the model's own setting."""
    if use_stream is None:
        use_stream = bool(getattr(est, "use_stream", True))
    raw = zdata.batches(mdata, split, mods, batch_size, shuffle=shuffle, seed=seed, device=est.device_,
                        use_stream=use_stream,
                        rows=None if rows is None else np.sort(np.asarray(rows)))
    return ActivationStream(est, submodule, layer, raw, align)
