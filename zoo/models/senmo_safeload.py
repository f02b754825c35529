"""Read the SeNMo authors' training checkpoints without unpickling anything that can run code.

Their files (``Checkpoint_pancancer_combined_omic_fold{k}_for_test.pt``) are
``torch.save({'split', 'opt', 'epoch', 'data', 'model_state_dict',
'optimizer_state_dict', 'metrics'}, ..., pickle_protocol=4)``: besides
tensors they hold an ``argparse.Namespace`` (``opt``) and numpy arrays and
scalars (``data``, ``metrics``). Plain ``torch.load(weights_only=True)``
refuses them (the Namespace), so the file is read with
``torch.load(weights_only=True)`` inside ``torch.serialization.safe_globals``
listing exactly :data:`SAFE_GLOBALS`. The weights-only unpickler of current
torch also refuses pickle protocol 4's framing opcodes; only then the file is
read by a restricted :class:`pickle.Unpickler` whose ``find_class`` admits
the same allow-list plus torch's tensor rebuild (``torch.load`` with that
unpickler as ``pickle_module``). Any other global is refused in both paths,
before it is imported or called.
"""
from __future__ import annotations

import argparse
import collections
import pickle
import types
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

from omicsdata.errors import FormatError

try:  # numpy >= 2
    from numpy._core import multiarray as _multiarray
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray

#: "module.name" -> object: exactly what the authors' files need beyond tensors
#: (both numpy module spellings: files written by numpy 1.x say ``numpy.core``)
SAFE_GLOBALS: dict[str, object] = {
    "argparse.Namespace": argparse.Namespace,
    "numpy.ndarray": np.ndarray,
    "numpy.dtype": np.dtype,
    "numpy.core.multiarray._reconstruct": _multiarray._reconstruct,
    "numpy._core.multiarray._reconstruct": _multiarray._reconstruct,
    "numpy.core.multiarray.scalar": _multiarray.scalar,
    "numpy._core.multiarray.scalar": _multiarray.scalar,
}
#: torch's own rebuild functions and containers (the weights-only unpickler allows these itself)
_TORCH_GLOBALS: dict[str, object] = {
    "collections.OrderedDict": collections.OrderedDict,
    "torch._utils._rebuild_tensor_v2": torch._utils._rebuild_tensor_v2,
    "torch._utils._rebuild_parameter": torch._utils._rebuild_parameter,
}


def _torch_safe_globals() -> list:
    return [(obj, name) for name, obj in SAFE_GLOBALS.items()]


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only allow-listed globals (storage types are resolved by torch)."""

    def find_class(self, module, name):
        key = f"{module}.{name}"
        obj = SAFE_GLOBALS.get(key, _TORCH_GLOBALS.get(key))
        if obj is None:
            raise pickle.UnpicklingError(f"global '{key}' is not in the allow-list")
        return obj


def _restricted_load(f, **kwargs):
    return _RestrictedUnpickler(f, **kwargs).load()


_RESTRICTED = types.ModuleType("zoo_restricted_pickle")
_RESTRICTED.Unpickler = _RestrictedUnpickler
_RESTRICTED.load = _restricted_load
_RESTRICTED.UnpicklingError = pickle.UnpicklingError


def _first_line(e: Exception) -> str:
    lines = [ln for ln in str(e).splitlines() if ln.strip()]
    hit = [ln for ln in lines if "GLOBAL" in ln or "allow-list" in ln or "Unsupported" in ln]
    return (hit or lines or [""])[0].strip()


def load_checkpoint(path) -> dict:
    """The authors' checkpoint dict, read without running code; :class:`FormatError` when refused."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(path, "file not found")
    if not zipfile.is_zipfile(path):
        raise FormatError(path, "not a torch zip checkpoint (the legacy torch format is not read)")
    try:
        with torch.serialization.safe_globals(_torch_safe_globals()), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "Unsupported operand" not in str(e):  # a global outside the allow-list
            raise FormatError(path, "refused by torch.load(weights_only=True) with the SeNMo allow-list: "
                                    f"{_first_line(e)}") from None
        try:  # pickle protocol 4 framing: same allow-list, restricted unpickler
            obj = torch.load(str(path), map_location="cpu", weights_only=False, pickle_module=_RESTRICTED)
        except pickle.UnpicklingError as e2:
            raise FormatError(path, f"refused (weights_only allow-list, protocol-4 reader): {_first_line(e2)}") \
                from None
    except Exception as e:  # noqa: BLE001 - corrupt zip, truncated file...
        raise FormatError(path, f"cannot be read as a torch checkpoint ({type(e).__name__}: {_first_line(e)})") \
            from None
    if not isinstance(obj, dict):
        raise FormatError(path, f"expected a dict at the top level, got {type(obj).__name__}")
    return obj
