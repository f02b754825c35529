"""The process-wide thread pools of the read path, and the job runner that spreads chunk decodes over them.

Decoding (numcodecs, c-blosc) and row gathers (numpy, scipy) release the GIL,
so a couple of threads keep both cores of a small machine busy. Pools are
made once per process (again after a fork: a DataLoader worker gets its own).
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

_pools: dict = {}
_lock = threading.Lock()

#: Threads decoding chunks of one read (``od.torch.stream(decode_threads=...)`` overrides it).
DEFAULT_DECODE_THREADS = max(1, min(4, os.cpu_count() or 1))


def decode_pool(n: int) -> ThreadPoolExecutor | None:
    """A process-wide pool of ``n`` decode threads (re-made after a fork); ``None`` for ``n <= 1``."""
    return thread_pool(n, "decode") if n > 1 else None


def thread_pool(n: int, name: str) -> ThreadPoolExecutor:
    """The process-wide pool ``name`` of ``n`` threads (re-made after a fork)."""
    key = (os.getpid(), name, n)
    with _lock:
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = ThreadPoolExecutor(max_workers=n, thread_name_prefix=f"omicsdata-{name}")
    return pool


def run_jobs(jobs: list, threads: int) -> None:
    """Run ``(fn, *args)`` jobs on ``threads`` decode threads when more than one; re-raises the first error.

    Each thread takes the next job as it finishes one (one pool task per thread, not per job): a store of
    small chunks (annbatch's 32k-element inner chunks: thousands a read) would otherwise pay a future, a
    lock and a thread switch per chunk, and measured slower on two threads than on one. After an error
    the threads stop taking jobs."""
    workers = min(int(threads), len(jobs))
    if workers <= 1:
        for fn, *args in jobs:
            fn(*args)
        return
    lock, nxt, failed = threading.Lock(), [0], []

    def work():
        while not failed:
            with lock:  # each job goes to exactly one thread
                i = nxt[0]
                nxt[0] += 1
            if i >= len(jobs):
                return
            fn, *args = jobs[i]
            try:
                fn(*args)
            except BaseException as e:  # noqa: BLE001 - handed to the caller below
                failed.append(e)

    pool = decode_pool(threads)
    for f in [pool.submit(work) for _ in range(workers)]:
        f.result()
    if failed:
        raise failed[0]
