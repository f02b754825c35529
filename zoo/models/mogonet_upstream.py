"""Convert the MOGONET authors' trained weights into a zoo checkpoint (converter ``mogonet-upstream``).

The authors (repository ``txWang/MOGONET``, ``utils.save_model_dict``) save one
plain ``state_dict`` per module and run, ``<DS>/models/<run>/<module>.pth``:

* ``E<v>.pth`` - ``GCN_E`` of view ``v``: ``gc1.weight`` (in, h1), ``gc1.bias`` (h1,),
  ``gc2.*`` (h1, h2), ``gc3.*`` (h2, h3) -> ``encoders.<v-1>.gc<i>.*``;
* ``C<v>.pth`` - ``Classifier_1``: ``clf.0.weight`` (C, h3), ``clf.0.bias`` -> ``heads.<v-1>.clf.0.*``;
* ``C.pth`` - ``VCDN``: ``model.0.*`` (hvcdn, C**V), ``model.2.*`` (C, hvcdn) -> ``vcdn.model.0.*`` / ``.2.*``.

Files are read with ``torch.load(weights_only=True, map_location="cpu")`` (the
authors saved CUDA tensors; nothing beyond tensors is unpickled). The model is
transductive: the converter also fetches the training samples' features
(``<DS>/<v>_tr.csv``, with ``<v>_featname.csv`` for the names; no labels), which
:meth:`zoo.MOGONET.from_weights` keeps in the checkpoint and uses with the
adjacency parameter (authors: ROSMAP 2, BRCA 10) to rebuild the graph.

Catalog options (``convert: {name: mogonet-upstream, ...}``): ``folder``
(``ROSMAP``/``BRCA``), ``run`` (1-5), ``classes`` (names in code order),
``adj_parameter``, ``modalities`` (one per view, default mrna/methylation/mirna),
``hidden`` (checked against the weights), ``test_graph`` (``authors`` reproduces
the authors' test-time graph, ``attach`` makes each prediction independent of
the batch; see :mod:`zoo.models.mogonet_net`).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from omicsdata.builders import mogonet_files as mf
from omicsdata.errors import FormatError, SchemaMismatchError

from ..checkpoint import save
from ..converters import register_converter

DEFAULT_MODALITIES = ("mrna", "methylation", "mirna")

OPTIONS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["folder", "classes", "adj_parameter"],
    "properties": {
        "folder": {"type": "string", "pattern": "^[A-Za-z0-9_.-]+$"},
        "run": {"type": "integer", "minimum": 1},
        "classes": {"type": "array", "items": {"type": "string"}, "minItems": 2},
        "adj_parameter": {"type": "integer", "minimum": 1},
        "modalities": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "hidden": {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 3, "maxItems": 3},
        "test_graph": {"enum": ["authors", "attach"]},
    },
}


def module_files(n_views: int) -> list[str]:
    """The authors' module file names of one run: ``E1.pth`` .. ``E<V>.pth``, ``C1.pth`` .., ``C.pth``."""
    return [f"E{v}.pth" for v in range(1, n_views + 1)] + [f"C{v}.pth" for v in range(1, n_views + 1)] + \
        (["C.pth"] if n_views >= 2 else [])


def load_state(path) -> dict[str, torch.Tensor]:
    """One authors' ``.pth``: a plain state dict of tensors, loaded on the CPU with ``weights_only=True``."""
    path = Path(path)
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FormatError(path, "file not found") from None
    except Exception as e:  # pickle.UnpicklingError and friends: weights_only refused the file
        msg = str(e).splitlines()[0] if str(e) else ""
        raise FormatError(path, "refused by torch.load(weights_only=True): not a plain state dict of tensors "
                                f"({type(e).__name__}: {msg})") from None
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise FormatError(path, "expected a state dict (a non-empty dict of tensors)")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in obj.items()}


def _expect(state: dict, keys: list[str], path) -> None:
    extra, missing = sorted(set(state) - set(keys)), sorted(set(keys) - set(state))
    if extra or missing:
        raise FormatError(path, f"keys do not follow the authors' layout: unexpected {extra[:5]}, missing {missing[:5]}")


def map_states(states: dict[str, dict], n_views: int, where: dict | None = None) -> dict[str, torch.Tensor]:
    """The authors' per-module state dicts (``{"E1.pth": {...}, ...}``) as one ``MOGONETNet`` state dict.

    Checks every key and that the shapes chain (gc1 -> gc2 -> gc3 -> head -> VCDN);
    errors name the file and the tensor.
    """
    where = where or {f: f for f in states}
    out: dict[str, torch.Tensor] = {}
    hidden, n_classes = None, None
    for v in range(1, n_views + 1):
        e, c = states[f"E{v}.pth"], states[f"C{v}.pth"]
        _expect(e, [f"gc{i}.{p}" for i in (1, 2, 3) for p in ("weight", "bias")], where[f"E{v}.pth"])
        _expect(c, ["clf.0.weight", "clf.0.bias"], where[f"C{v}.pth"])
        dims = [tuple(e[f"gc{i}.weight"].shape) for i in (1, 2, 3)]
        for i in (1, 2, 3):
            w, b = e[f"gc{i}.weight"], e[f"gc{i}.bias"]
            if w.dim() != 2 or tuple(b.shape) != (w.shape[1],):
                raise FormatError(where[f"E{v}.pth"], f"gc{i}.weight {tuple(w.shape)} / gc{i}.bias {tuple(b.shape)}: "
                                                      "expected (in, out) and (out,)")
            if i > 1 and dims[i - 1][0] != dims[i - 2][1]:
                raise FormatError(where[f"E{v}.pth"], f"gc{i}.weight takes {dims[i - 1][0]} inputs, "
                                                      f"gc{i - 1} gives {dims[i - 2][1]}")
        h = [d[1] for d in dims]
        if hidden is None:
            hidden = h
        elif h != hidden:
            raise FormatError(where[f"E{v}.pth"], f"hidden widths {h} differ from view 1's {hidden}")
        cw = c["clf.0.weight"]
        if cw.dim() != 2 or cw.shape[1] != h[2] or tuple(c["clf.0.bias"].shape) != (cw.shape[0],):
            raise FormatError(where[f"C{v}.pth"], f"clf.0.weight {tuple(cw.shape)}: expected (classes, {h[2]})")
        if n_classes is None:
            n_classes = int(cw.shape[0])
        elif cw.shape[0] != n_classes:
            raise FormatError(where[f"C{v}.pth"], f"{cw.shape[0]} classes, view 1 has {n_classes}")
        for i in (1, 2, 3):
            for p in ("weight", "bias"):
                out[f"encoders.{v - 1}.gc{i}.{p}"] = e[f"gc{i}.{p}"]
        for p in ("weight", "bias"):
            out[f"heads.{v - 1}.clf.0.{p}"] = c[f"clf.0.{p}"]
    if n_views >= 2:
        f = states["C.pth"]
        _expect(f, ["model.0.weight", "model.0.bias", "model.2.weight", "model.2.bias"], where["C.pth"])
        w0, w2 = f["model.0.weight"], f["model.2.weight"]
        if w0.dim() != 2 or w0.shape[1] != n_classes ** n_views:
            raise FormatError(where["C.pth"], f"model.0.weight {tuple(w0.shape)}: expected (hvcdn, "
                                              f"{n_classes}**{n_views} = {n_classes ** n_views})")
        if w2.dim() != 2 or tuple(w2.shape) != (n_classes, w0.shape[0]):
            raise FormatError(where["C.pth"], f"model.2.weight {tuple(w2.shape)}: expected ({n_classes}, {w0.shape[0]})")
        for i in (0, 2):
            for p in ("weight", "bias"):
                out[f"vcdn.model.{i}.{p}"] = f[f"model.{i}.{p}"]
    return {k: v.detach().to(torch.float32).contiguous() for k, v in out.items()}


def train_features(files: dict, modalities, where: str) -> dict[str, pd.DataFrame]:
    """``{modality: DataFrame (n_train, p)}`` from ``<v>_tr.csv`` + ``<v>_featname.csv`` (names as the builders make them)."""
    out, n = {}, None
    for v, m in enumerate(modalities, 1):
        X = mf.read_matrix(files[f"{v}_tr.csv"])
        names, _ = mf.unique_names(mf.read_featnames(files[f"{v}_featname.csv"]))
        if X.shape[1] != len(names):
            raise FormatError(files[f"{v}_tr.csv"], f"{X.shape[1]} columns but {v}_featname.csv names {len(names)}")
        if n is not None and X.shape[0] != n:
            raise FormatError(files[f"{v}_tr.csv"], f"{X.shape[0]} training rows, view 1 has {n}")
        n = X.shape[0]
        out[m] = pd.DataFrame(X, columns=names)
    return out


def convert(states: dict[str, dict], feats: dict[str, pd.DataFrame], classes, adj_parameter: int,
            out_dir=None, hidden=None, test_graph: str = "authors", where: dict | None = None,
            data_info: dict | None = None, license: str | None = None):
    """A fitted ``zoo.MOGONET`` from the authors' module state dicts and training features; saved at ``out_dir`` if given."""
    from .mogonet import MOGONET

    mods = list(feats)
    state = map_states(states, len(mods), where)
    if len(classes) != state["heads.0.clf.0.weight"].shape[0]:
        raise SchemaMismatchError(f"the weights have {state['heads.0.clf.0.weight'].shape[0]} classes, "
                                  f"the catalog entry names {len(classes)}: {list(classes)}")
    got_hidden = [int(state[f"encoders.0.gc{i}.weight"].shape[1]) for i in (1, 2, 3)]
    if hidden is not None and list(hidden) != got_hidden:
        raise SchemaMismatchError(f"the weights' hidden widths are {got_hidden}, the catalog entry says {list(hidden)}")
    for v, m in enumerate(mods):
        p_w, p_x = int(state[f"encoders.{v}.gc1.weight"].shape[0]), feats[m].shape[1]
        if p_w != p_x:
            raise SchemaMismatchError(f"view {v + 1} ({m}): the encoder takes {p_w} features, the training file has {p_x}")
    est = MOGONET.from_weights(state, feats, classes, adj_parameter=int(adj_parameter), modalities=mods,
                               test_graph=test_graph, progress=False)
    est.schema_.setdefault("data", {}).update(data_info or {})
    if out_dir is not None:
        save(est, out_dir, license=license or "MIT",
             title="MOGONET (the authors' trained weights, converted)",
             description="Converted from the MOGONET authors' published weights (txWang/MOGONET) by the zoo "
                         "converter 'mogonet-upstream'. Holds the authors' training samples' features "
                         "(no labels) for the transductive graph.")
    return est


@register_converter("mogonet-upstream", options_schema=OPTIONS_SCHEMA,
                    variant=lambda o: f"run-{int(o.get('run', 1))}-{o.get('test_graph', 'authors')}")
def convert_entry(source, out_dir, options: dict, entry: dict) -> None:
    """Catalog converter: fetch a run's 7 ``.pth`` files and the training features, convert into ``out_dir``."""
    folder, run = options["folder"], int(options.get("run", 1))
    mods = list(options.get("modalities") or DEFAULT_MODALITIES)
    V = len(mods)
    paths = {f: f"{folder}/models/{run}/{f}" for f in module_files(V)}
    local = {f: source.fetch(p) for f, p in paths.items()}
    states = {f: load_state(local[f]) for f in paths}
    where = {f: f"{paths[f]} ({local[f]})" for f in paths}
    data = {}
    for v in range(1, V + 1):
        for name in (f"{v}_tr.csv", f"{v}_featname.csv"):
            data[name] = source.fetch(f"{folder}/{name}")
    feats = train_features(data, mods, folder)
    info = {"dataset": entry.get("dataset"), "split": "authors' published training samples",
            "n_train": int(next(iter(feats.values())).shape[0]), "source": {**source.describe(), "run": run},
            "redistributable": bool(entry.get("redistributable", True))}
    convert(states, feats, options["classes"], options["adj_parameter"], out_dir=out_dir,
            hidden=options.get("hidden"), test_graph=options.get("test_graph", "authors"), where=where,
            data_info=info, license=entry.get("license"))
