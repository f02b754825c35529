"""The ``device=`` option of the torch loaders: parsed and checked up front, with an error that names it."""
from __future__ import annotations

import torch

from ..errors import OmicsDataError


class DeviceError(OmicsDataError, ValueError):
    """The ``device`` option names a device this machine cannot use."""


def resolve_device(device, option: str = "device") -> torch.device:
    """``device`` (None, a string or a ``torch.device``) as a ``torch.device`` this process can use.

    ``None`` means the CPU. A CUDA device on a machine (or torch build)
    without CUDA, or an index past the visible GPUs, raises
    :class:`DeviceError` naming ``option`` instead of torch's error at the
    first batch.
    """
    if device is None:
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as e:
        raise DeviceError(f"{option}={device!r} is not a device torch knows ({e}); "
                          "use 'cpu', 'cuda', 'cuda:N' or None") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = ("this torch build has no CUDA" if torch.version.cuda is None
                   else "no CUDA GPU is visible (driver, CUDA_VISIBLE_DEVICES)")
            raise DeviceError(f"{option}={device!r}: CUDA is not available here ({why}; torch {torch.__version__}); "
                              f"pass {option}='cpu' (or None) to stream on the CPU")
        n = torch.cuda.device_count()
        if dev.index is not None and dev.index >= n:
            raise DeviceError(f"{option}={device!r}: only {n} CUDA device(s) visible (cuda:0..cuda:{n - 1})")
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise DeviceError(f"{option}={device!r}: MPS is not available here; pass {option}='cpu' (or None)")
    return dev
