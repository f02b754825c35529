"""Issue 15's fault suite: break things the way a user's machine would and print one table.

    .venv/bin/python scripts/fault_suite.py [--quick] [--only SUBSTRING] [--workers N]

Rows come from ``scripts/faults_io.py`` (downloads, archives, MAF), ``scripts/faults_zoo.py``
(checkpoints, NaN/inf, the zoo CLI), ``scripts/faults_build.py`` (kill -9 during builds and
``write_store``, concurrent loads, full disk, read-only cache) and, when present,
``scripts/faults_store.py`` (read-time integrity, cache slots, leftovers, locks, paths).
Each row is ``(name, callable(scratch) -> (clean_error, nothing_lost, detail))``.

Columns: fault | clean error | nothing lost | detail. Exit code 0 when every row is
clean and lost nothing, else 1. Rows that run real processes go to a small thread
pool while the in-process rows run; ``--quick`` uses 2 kills instead of 10 and a 40 MiB
MAF header line instead of 400 MiB.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import functools
import importlib
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))


def collect(quick: bool = False) -> tuple[list, list]:
    """(rows run in worker threads: real processes, rows run in this process)."""
    import faults_build
    import faults_io
    import faults_zoo

    background = [(n, functools.partial(f, n_kills=2) if quick and "kill -9" in n else f)
                  for n, f in faults_build.ROWS]
    background.append(next(r for r in faults_zoo.ROWS if r[0].startswith("zoo CLI")))
    inproc = [(n, functools.partial(faults_io.maf_long_header, mib=40) if quick and n.startswith("MAF") else f)
              for n, f in faults_io.ROWS]
    inproc += [r for r in faults_zoo.ROWS if not r[0].startswith("zoo CLI")]
    try:
        store = importlib.import_module("faults_store")
        inproc += list(store.ROWS)
    except ModuleNotFoundError:
        inproc.append(("store rows (scripts/faults_store.py)", lambda tmp: (False, True, "module not present")))
    return background, inproc


def run_row(name: str, fn, own_home: bool = False) -> tuple:
    """``(name, clean, nothing_lost, detail, seconds)``; an exception escaping a row is a defect row.

    ``own_home``: the row runs with ``$OMICSDATA_HOME`` (and ``$HF_HOME``) in its scratch folder, as each
    test does (only for rows run in the main thread; the process rows pass their homes explicitly).
    """
    tmp = Path(tempfile.mkdtemp(prefix="fault-"))
    t0 = time.monotonic()
    saved = {k: os.environ.get(k) for k in ("OMICSDATA_HOME", "HF_HOME")}
    if own_home:
        os.environ["OMICSDATA_HOME"] = str(tmp / "odhome")
        os.environ["HF_HOME"] = str(tmp / "odhome" / "hf")
    try:
        clean, kept, detail = fn(tmp)
    except Exception as e:  # noqa: BLE001 - the suite reports, it does not stop
        clean, kept, detail = False, False, f"ROW CRASHED {type(e).__name__}: {e} {traceback.format_exc(limit=-2)}"
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
        shutil.rmtree(tmp, ignore_errors=True)
    return name, bool(clean), bool(kept), " ".join(str(detail).split()), time.monotonic() - t0


def table(results: list, width: int = 150) -> str:
    """The fault table as fixed-width text."""
    w = max(len(r[0]) for r in results)
    lines = [f"{'fault':<{w}} | clean error | nothing lost | detail", "-" * min(width + w, 220)]
    for name, clean, kept, detail, secs in results:
        lines.append(f"{name:<{w}} | {'yes' if clean else 'NO':<11} | {'yes' if kept else 'NO':<12} | "
                     f"{detail[:width]} ({secs:.0f}s)")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 kills instead of 10; a 40 MiB MAF line")
    ap.add_argument("--only", default=None, help="run rows whose name contains this")
    ap.add_argument("--workers", type=int, default=3, help="threads for the real-process rows")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    background, inproc = collect(args.quick)
    if args.only:
        background = [r for r in background if args.only.lower() in r[0].lower()]
        inproc = [r for r in inproc if args.only.lower() in r[0].lower()]
    order = [n for n, _ in background + inproc]
    with cf.ThreadPoolExecutor(max(1, args.workers)) as ex:
        futs = [ex.submit(run_row, n, f) for n, f in background]
        done = [run_row(n, f, own_home=True) for n, f in inproc]
        done += [f.result() for f in futs]
    done.sort(key=lambda r: order.index(r[0]))
    print(table(done))
    bad = [r for r in done if not (r[1] and r[2])]
    print(f"\n{len(done)} rows, {len(done) - len(bad)} clean with nothing lost, {len(bad)} defects; "
          f"{time.monotonic() - t0:.0f} s")
    return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main())
