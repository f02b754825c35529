"""One helper to turn numpy-bearing structures into JSON types (manifests, checkpoints, cards)."""
from __future__ import annotations

import numpy as np


def jsonable(obj):
    """``obj`` with numpy scalars/arrays as Python numbers/lists, tuples as lists and dict keys as
    strings; any other non-JSON object becomes its ``str``."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)
