"""Dense or CSR for the expression modality, chosen by measuring both on a sample of rows."""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import scipy.sparse as sp


def choose_storage(sample: np.ndarray, codec: str = "blosc-zstd-3", repeats: int = 3) -> dict:
    """Measure dense vs CSR on a sample of rows: compressed bytes with the store codec and
    decode time back to dense rows. The smaller wins unless it decodes over 2x slower."""
    import zarr
    from zarr.storage import MemoryStore

    from ...storage import make_codec

    sample = np.ascontiguousarray(sample, dtype=np.float32)
    comp = make_codec(codec)
    kw = {"compressors": comp} if comp is not None else {"compressors": None}
    res: dict[str, Any] = {"rows_measured": int(sample.shape[0]), "density": float((sample != 0).mean()) if sample.size else 0.0}

    def nbytes(store) -> int:
        import asyncio

        async def total():
            n = 0
            async for k in store.list():
                b = await store.get(k, prototype=zarr.core.buffer.default_buffer_prototype())
                n += len(b.to_bytes()) if b is not None else 0
            return n
        return asyncio.run(total())

    s_dense = MemoryStore()
    zd = zarr.create_array(s_dense, shape=sample.shape, dtype="float32", chunks=sample.shape, **kw)
    zd[...] = sample
    csr = sp.csr_matrix(sample)
    s_csr = MemoryStore()
    g = zarr.open_group(s_csr, mode="w", zarr_format=3)
    arrs = {}
    for nm, a in (("data", csr.data.astype(np.float32)), ("indices", csr.indices.astype(np.int32)),
                  ("indptr", csr.indptr.astype(np.int64))):
        z = g.create_array(nm, shape=a.shape, dtype=a.dtype, chunks=(max(1, a.size),), **kw)
        z[...] = a
        arrs[nm] = z

    def t_dense():
        return np.asarray(zd[...])

    def t_csr():
        return sp.csr_matrix((arrs["data"][...], arrs["indices"][...], arrs["indptr"][...]), shape=sample.shape).toarray()

    def best(fn):
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return min(ts)

    res["dense_bytes"], res["csr_bytes"] = nbytes(s_dense), nbytes(s_csr)
    res["dense_read_s"], res["csr_read_s"] = best(t_dense), best(t_csr)
    small = "csr" if res["csr_bytes"] < res["dense_bytes"] else "dense"
    fast = "csr" if res["csr_read_s"] < res["dense_read_s"] else "dense"
    slow_s = max(res["csr_read_s"], res["dense_read_s"])
    # smaller wins, unless it decodes over 2x slower on a sample big enough to time (>10 ms)
    overrule = small != fast and slow_s > 0.01 and slow_s > 2 * min(res["csr_read_s"], res["dense_read_s"])
    res["choice"] = fast if overrule else small
    return res


