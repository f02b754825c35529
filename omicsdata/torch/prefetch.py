"""Move host batches to the training device ahead of use.

:class:`Prefetcher` runs a background thread that pulls host batches from a
loader, finishes them (CSR parts -> ``torch.sparse_csr_tensor``; densify
where asked) and, for a CUDA device, copies every tensor into a *pinned*
host buffer (a small pool reused across batches) and issues the
host-to-device copy on a separate CUDA stream. The consumer's stream waits
on that copy's event only when it takes the batch, so the copy of batch
``n+1`` overlaps compute on batch ``n``. On a CPU device the very same code
runs with no pinning and no side stream (the "copy" is the identity).
"""
from __future__ import annotations

import queue
import threading
import warnings

import torch

_END = object()


class _Pool:
    """Pinned host buffers keyed by (dtype, numel), reused once their copy has finished."""

    def __init__(self, pin: bool):
        self.pin = pin
        self.free: dict = {}

    def get(self, t: torch.Tensor) -> torch.Tensor:
        key = (t.dtype, t.numel())
        lst = self.free.setdefault(key, [])
        for i, (buf, ev) in enumerate(lst):
            if ev is None or ev.query():
                lst.pop(i)
                return buf.view(t.shape)
        return torch.empty(t.shape, dtype=t.dtype, pin_memory=self.pin)

    def put(self, buf: torch.Tensor, ev) -> None:
        lst = self.free.setdefault((buf.dtype, buf.numel()), [])
        if len(lst) < 4:
            lst.append((buf.reshape(-1), ev))


class Prefetcher:
    """Iterate ``loader`` with batches already on ``device`` (``depth`` batches ahead).

    ``depth=0`` finishes each batch in the consumer's thread when it is asked
    for (no background thread, no queue): on a CPU device there is no copy to
    overlap, and handing every batch between threads cost 15-30% of the
    stream's samples/s on 2 cores (``scripts/profile_stream.py``).
    """

    def __init__(self, loader, device, densify=(), depth: int = 2):
        self.loader = loader
        self.device = torch.device(device)
        self.densify = set(densify or ())
        self.depth = max(0, int(depth))
        self.cuda = self.device.type == "cuda"
        self.pool = _Pool(pin=self.cuda)
        self.side = torch.cuda.Stream(device=self.device) if self.cuda else None

    # one tensor host -> device on the side stream
    def _to_device(self, t: torch.Tensor, pending: list) -> torch.Tensor:
        if not self.cuda:
            return t.to(self.device)
        if t.is_pinned():  # gathered straight into pinned memory: no staging copy
            pending.append(t)
            return t.to(self.device, non_blocking=True)
        host = self.pool.get(t)
        host.copy_(t)
        dev = host.to(self.device, non_blocking=True)
        pending.append(host)
        return dev

    def _csr(self, key: str, crow, col, values, shape) -> torch.Tensor:
        """A batch's CSR parts (already on the device) as a torch CSR tensor, dense where ``densify`` asks."""
        with warnings.catch_warnings():  # "sparse CSR support is in beta"
            warnings.simplefilter("ignore", UserWarning)
            csr = torch.sparse_csr_tensor(crow, col, values, size=shape, device=self.device, check_invariants=False)
        return csr.to_dense() if key in self.densify else csr

    def _finish(self, batch: dict):
        """Host batch -> device batch; returns (batch, event to wait on)."""
        if self.device.type == "cpu":  # nothing to copy: CSR parts become CSR tensors, the rest is as it is
            return {k: self._csr(k, v["crow"], v["col"], v["values"], v["shape"]) if isinstance(v, dict) else v
                    for k, v in batch.items()}, None
        pending: list = []
        given = {v.data_ptr() for v in _tensors(batch)}  # the batch's own (pinned) tensors: not pool buffers
        ctx = torch.cuda.stream(self.side) if self.cuda else _Null()
        out = {}
        with ctx:
            for k, v in batch.items():
                if isinstance(v, dict):  # CSR parts
                    crow = self._to_device(v["crow"], pending)
                    col = self._to_device(v["col"], pending)
                    val = self._to_device(v["values"], pending)
                    out[k] = self._csr(k, crow, col, val, v["shape"])
                else:
                    out[k] = self._to_device(v, pending)
            ev = None
            if self.cuda:
                ev = torch.cuda.Event()
                ev.record(self.side)
        for buf in pending:
            if buf.data_ptr() not in given:
                self.pool.put(buf, ev)
        return out, ev

    def _produce(self, q: queue.Queue, stop: threading.Event):
        try:
            for batch in self.loader:
                if stop.is_set():
                    return
                item = self._finish(batch)
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except BaseException as e:  # noqa: BLE001 - re-raised in the consumer
            q.put(e)
            return
        q.put(_END)

    def __iter__(self):
        if not self.depth:
            for host in self.loader:
                batch, ev = self._finish(host)
                yield self._ready(batch, ev)
            return
        q: queue.Queue = queue.Queue(maxsize=self.depth)
        stop = threading.Event()
        th = threading.Thread(target=self._produce, args=(q, stop), daemon=True, name="omicsdata-prefetch")
        th.start()
        try:
            while True:
                item = q.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield self._ready(*item)
        finally:
            stop.set()
            while th.is_alive():
                try:
                    q.get_nowait()
                except queue.Empty:
                    th.join(timeout=0.05)

    def _ready(self, batch: dict, ev) -> dict:
        """The batch, once the consumer's CUDA stream waits on its copy (``ev``; None on a CPU device)."""
        if ev is not None:
            cur = torch.cuda.current_stream(self.device)
            cur.wait_event(ev)
            for v in batch.values():  # memory made on the side stream is now used on ours
                parts = ((v.crow_indices(), v.col_indices(), v.values()) if v.layout == torch.sparse_csr
                         else (v,))
                for part in parts:
                    part.record_stream(cur)
        return batch


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def _tensors(batch: dict):
    for v in batch.values():
        if isinstance(v, dict):
            yield from (v["crow"], v["col"], v["values"])
        elif isinstance(v, torch.Tensor):
            yield v
