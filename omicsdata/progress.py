"""The one progress-bar helper of omicsdata and zoo: :func:`bar`.

* In a terminal (stderr is a TTY) a normal tqdm bar is shown.
* When stderr is not a terminal (CI, ``nohup``, captured notebook output) no
  carriage-return updates are written: the bar is disabled and one line per
  stage is logged instead, at the start and at the end (through ``logging``,
  logger ``omicsdata.progress``).
* ``$OMICSDATA_PROGRESS=1`` forces bars on, ``=0`` forces them off
  (no per-stage lines either); any other value is an error naming the variable.

Every tqdm call site in omicsdata and zoo goes through :func:`bar`.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time

from .errors import OmicsDataError

ENV = "OMICSDATA_PROGRESS"
log = logging.getLogger(__name__)
_ON, _OFF = {"1", "on", "true", "yes"}, {"0", "off", "false", "no"}


def mode(stream=None) -> str:
    """``"bar"`` (tqdm), ``"lines"`` (one log line per stage) or ``"off"``, from the setting and the stream."""
    raw = os.environ.get(ENV, "").strip().lower()
    if raw in _ON:
        return "bar"
    if raw in _OFF:
        return "off"
    if raw:
        raise OmicsDataError(f"${ENV}='{os.environ[ENV]}': use 1 (progress bars on) or 0 (off)")
    stream = sys.stderr if stream is None else stream
    if type(stream).__module__.startswith("ipykernel"):  # a notebook cell shows tqdm's bar (widget or text)
        return "bar"
    try:
        tty = bool(stream.isatty())
    except (AttributeError, ValueError):
        tty = False
    return "bar" if tty else "lines"


class _Stage:
    """A stand-in for a disabled bar that logs one line when the stage starts and one when it ends."""

    def __init__(self, iterable=None, total=None, desc: str = "", unit: str = "it", quiet: bool = False, **_):
        self.iterable, self.total, self.desc, self.unit, self.quiet = iterable, total, desc or "working", unit, quiet
        self.n, self._t0, self._closed = 0, time.perf_counter(), False
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            self.total = len(iterable)
        if not quiet:
            log.info("%s: started (%s %s)", self.desc, self.total if self.total is not None else "?", self.unit)

    def __iter__(self):
        try:
            for x in self.iterable:
                yield x
                self.n += 1
        finally:
            self.close()

    def __len__(self):
        return len(self.iterable) if self.iterable is not None else int(self.total or 0)

    def update(self, n: int = 1):
        self.n += n

    def set_postfix(self, *args, **kwargs):
        pass

    def set_description(self, desc=None, refresh=True):
        self.desc = desc or self.desc

    def close(self):
        if not self._closed and not self.quiet:
            log.info("%s: done (%d %s in %.1f s)", self.desc, self.n, self.unit, time.perf_counter() - self._t0)
        self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def bar(iterable=None, *, total=None, desc: str = "", unit: str = "it", leave: bool = True, **kwargs):
    """A progress bar over ``iterable`` (or a manual one with ``total``), tqdm's interface.

    A tqdm bar in a terminal; a disabled bar that logs one line per stage when
    stderr is not a terminal; nothing with ``$OMICSDATA_PROGRESS=0``.
    """
    m = mode()
    if m == "bar":
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, **kwargs)
    return _Stage(iterable, total=total, desc=desc, unit=unit, quiet=(m == "off"))


@contextlib.contextmanager
def activity(desc: str, tick_s: float = 0.5):
    """A stage of unknown length (e.g. building a store on first use), shown at once.

    In a terminal: a tqdm line ``desc`` whose elapsed time ticks every ``tick_s``
    seconds until the block ends; otherwise one log line when the stage starts and
    one when it ends (with its duration); nothing with ``$OMICSDATA_PROGRESS=0``.
    """
    m = mode()
    if m != "bar":
        t0 = time.perf_counter()
        if m == "lines":
            log.info("%s: started", desc)
        yield None
        if m == "lines":
            log.info("%s: done in %.1f s", desc, time.perf_counter() - t0)
        return
    from tqdm.auto import tqdm

    pb = tqdm(total=None, desc=desc, bar_format="{desc}: {elapsed}", leave=True)
    stop = threading.Event()

    def tick():
        while not stop.wait(tick_s):
            pb.refresh()

    t = threading.Thread(target=tick, name="omicsdata-progress", daemon=True)
    t.start()
    try:
        yield pb
    finally:
        stop.set()
        t.join()
        pb.close()


class cli_stage_lines:
    """Context manager for CLIs: while it is active, the per-stage lines go to (the current) ``sys.stderr``."""

    def __enter__(self):
        self.handler = logging.StreamHandler(sys.stderr)
        self.handler.setFormatter(logging.Formatter("%(message)s"))
        self.level = log.level
        log.addHandler(self.handler)
        if log.getEffectiveLevel() > logging.INFO:
            log.setLevel(logging.INFO)
        return self

    def __exit__(self, *exc):
        log.removeHandler(self.handler)
        log.setLevel(self.level)
        return False
