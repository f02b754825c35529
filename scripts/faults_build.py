"""Fault rows for builds and store writes in real processes (issue 15); same row contract as
:mod:`faults_io`: kill -9 at random moments of a build and of a ``write_store``, six processes
loading the same absent dataset, a full disk during a build, a read-only cache folder.

Every process runs :data:`CHILD` (``python -c``) with its own ``$OMICSDATA_HOME``.
"""
from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OPTS = dict(n_patients=40, n_cancer_types=2, seed=0)

CHILD = textwrap.dedent('''
    import json, os, sys
    import omicsdata as od
    from omicsdata import api, storage
    mode, arg = sys.argv[1], sys.argv[2]
    opts = json.loads(os.environ["FAULT_OPTS"])
    if os.environ.get("FAULT_WAIT"):  # imported and ready; start when the parent says so
        print("READY", flush=True)
        sys.stdin.readline()
    if mode == "build":  # recovery: the next call opens a complete store or rebuilds; then a forced rebuild
        m = od.load("demo-pancancer", **opts)
        path = api.built_store_path("demo-pancancer", **opts)
        print("RECOVERED", m.n_obs, storage.verify_store(path)["ok"], flush=True)
        if arg == "go":
            print("GO", flush=True)
            od.build("demo-pancancer", force=True, **opts)
    elif mode == "write":  # recovery: the target opens complete, or nothing was published; then a write
        from omicsdata import synth
        target = arg
        if os.path.exists(target):
            m = od.load(target)
            print("RECOVERED", m.n_obs, storage.verify_store(target)["ok"], flush=True)
        else:
            print("RECOVERED absent True", flush=True)
        if os.environ.get("FAULT_GO"):
            sim = synth.simulate_pancancer(synth.CohortSpec(**opts))
            print("GO", flush=True)
            od.write_store(sim, target, dataset="sim")
    elif mode == "count":  # one of six concurrent loads; counts real builds in a shared file
        orig = api._build_locked
        def counted(*a, **k):
            with open(arg, "a") as fh:
                fh.write(f"{os.getpid()}\\n")
            return orig(*a, **k)
        api._build_locked = counted
        od.load("demo-pancancer", **opts)
        print("RECOVERED", api.built_store_path("demo-pancancer", **opts), flush=True)
    print("DONE", flush=True)
''')


def _env(home: Path, **extra) -> dict:
    import json

    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMICSDATA_TEST_", "FAULT_"))}
    env.update(OMICSDATA_HOME=str(home), FAULT_OPTS=json.dumps(OPTS), PYTHONPATH=str(ROOT), OMICSDATA_PROGRESS="0")
    env.update(extra)
    return env


def _spawn(args, env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CHILD, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.PIPE, text=True)


def _go(p: subprocess.Popen) -> None:
    _wait_line(p, "READY")
    p.stdin.write("go\n")
    p.stdin.flush()


def _wait_line(p: subprocess.Popen, word: str) -> str | None:
    for line in p.stdout:
        if line.startswith(word):
            return line.strip()
    return None


def _tree_digest(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(x for x in path.rglob("*") if x.is_file()):
        h.update(str(f.relative_to(path)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def _kill_loop(tmp: Path, mode: str, n_kills: int, seed: int):
    """Run one unkilled child (timing), then ``n_kills`` children killed at random moments, then a final check."""
    rng = random.Random(seed)
    home = tmp / "home"
    target = str(tmp / "w.zarr")
    arg = "go" if mode == "build" else target
    env = _env(home, FAULT_GO="1", FAULT_WAIT="1")
    t0 = time.monotonic()
    p = _spawn([mode, arg], env)
    _go(p)
    nxt = _spawn([mode, arg], env)  # the next child imports while this one works
    first = _wait_line(p, "RECOVERED")
    _wait_line(p, "GO")
    g0 = time.monotonic()
    p.wait()
    span = max(time.monotonic() - g0, 0.2)
    bad, notes = [], []
    if p.returncode != 0 or first is None:
        return False, False, f"first run failed: {p.stderr.read()[-300:]}"
    for i in range(n_kills):
        p = nxt
        _go(p)
        nxt = _spawn([mode, arg], env if i < n_kills - 1 else _env(home, FAULT_WAIT="1", FAULT_GO="1"))
        rec = _wait_line(p, "RECOVERED")
        if rec is None or not rec.endswith("True"):
            bad.append(f"kill {i}: recovery failed: {p.stderr.read()[-300:]}")
            p.kill()
            p.wait()
            continue
        if _wait_line(p, "GO") is None:
            bad.append(f"kill {i}: no GO ({p.stderr.read()[-200:]})")
            continue
        at = rng.uniform(0.0, 1.1 * span)
        time.sleep(at)
        alive = p.poll() is None
        p.send_signal(signal.SIGKILL)
        p.wait()
        notes.append(f"{at:.2f}s{'' if alive else '(done)'}")
    p = nxt  # the next call: recovers, then writes/builds once more to the end
    _go(p)
    last = _wait_line(p, "RECOVERED")
    p.wait()
    ok = last is not None and last.endswith("True") and not bad and p.returncode == 0
    stores = tmp if mode == "write" else home / "stores" / "demo-pancancer"
    leftovers = [x.name for x in stores.iterdir() if x.name.startswith(".tmp")] if stores.is_dir() else []
    work = home / "work"
    leftovers += [f"work/{x.name}" for x in work.iterdir()] if work.is_dir() else []
    detail = (f"{n_kills} kills at {', '.join(notes)} of a ~{span:.1f}s {mode}; next call: {last}; "
              f"{time.monotonic() - t0:.0f}s" + (f"; FAILED: {bad[:2]}" if bad else "")
              + (f"; leftovers {leftovers}" if leftovers else ""))
    return ok and not leftovers, ok, detail


def kill_build(tmp: Path, n_kills: int = 10, seed: int = 0):
    """kill -9 at ``n_kills`` random moments of a (forced re)build of demo-pancancer."""
    return _kill_loop(tmp, "build", n_kills, seed)


def kill_write_store(tmp: Path, n_kills: int = 10, seed: int = 1):
    """kill -9 at ``n_kills`` random moments of a ``write_store`` replacing a store."""
    return _kill_loop(tmp, "write", n_kills, seed)


def concurrent_loads(tmp: Path, n: int = 6):
    """``n`` processes load the same absent dataset at once: built once, every process sees the same bytes."""
    home, counter = tmp / "home", tmp / "builds.txt"
    procs = [_spawn(["count", str(counter)], _env(home)) for _ in range(n)]
    paths_seen = []
    for p in procs:
        line = _wait_line(p, "RECOVERED")
        p.wait()
        paths_seen.append(line)
    builds = counter.read_text().split() if counter.exists() else []
    ok = all(paths_seen) and len(set(paths_seen)) == 1 and len(builds) == 1
    digest = _tree_digest(Path(paths_seen[0].split(" ", 1)[1])) if ok else "-"
    errs = [p.stderr.read()[-200:] for p in procs if p.returncode]
    return ok, ok, f"{n} processes, {len(builds)} build(s), one store ({digest[:12]})" + (f"; {errs[:1]}" if errs else "")


def full_disk_build(tmp: Path):
    """ENOSPC injected at the write layer during a forced rebuild: a clear StoreError, the previous store intact."""
    home = tmp / "home"
    p = _spawn(["build", "check"], _env(home))
    _wait_line(p, "DONE")
    p.wait()
    code = ("import json, os, omicsdata as od\n"
            "opts = json.loads(os.environ['FAULT_OPTS'])\n"
            "try:\n    od.build('demo-pancancer', force=True, **opts)\n    print('NO ERROR')\n"
            "except od.OmicsDataError as e:\n    print('ERR', type(e).__name__, str(e).replace(chr(10), ' '))\n")
    from omicsdata import paths as _p  # noqa: F401 - the store folder is found below

    store = next((home / "stores").rglob("manifest.json"), None) if (home / "stores").is_dir() else None
    before = _tree_digest(store.parent) if store else None
    r = subprocess.run([sys.executable, "-c", code], env=_env(home, OMICSDATA_TEST_WRITE_FAULT="enospc"),
                       capture_output=True, text=True)
    out = r.stdout.strip()
    after = _tree_digest(store.parent) if store and store.parent.exists() else None
    clean = out.startswith("ERR") and "disk" in out.lower() and r.returncode == 0
    return clean, before is not None and before == after, out[:220] or r.stderr[-200:]


def read_only_cache(tmp: Path):
    """A read-only cache folder: a built store still loads; a build that must write fails clearly."""
    home = tmp / "home"
    p = _spawn(["build", "check"], _env(home))
    _wait_line(p, "DONE")
    p.wait()
    before = _tree_digest(home / "stores") if (home / "stores").is_dir() else None
    ro = _make_read_only(home)
    if ro is None:
        return False, True, "could not make the folder read-only here (no mount, running as root)"
    try:
        code = ("import json, os, omicsdata as od\n"
                "opts = json.loads(os.environ['FAULT_OPTS'])\n"
                "m = od.load('demo-pancancer', **opts); print('LOADED', m.n_obs)\n"
                "try:\n    od.load('demo-pancancer', **dict(opts, n_patients=opts['n_patients'] + 2))\n"
                "    print('NO ERROR')\n"
                "except od.OmicsDataError as e:\n    print('ERR', type(e).__name__, str(e).replace(chr(10), ' '))\n")
        r = subprocess.run([sys.executable, "-c", code], env=_env(home), capture_output=True, text=True)
    finally:
        ro()
    out = r.stdout.strip().replace("\n", " | ")
    clean = "LOADED" in out and "ERR" in out and r.returncode == 0
    after = _tree_digest(home / "stores") if (home / "stores").is_dir() else None
    return clean, before == after, (out or r.stderr[-200:])[:240]


def _make_read_only(folder: Path):
    """Make ``folder`` read-only; returns the undo callable (None when impossible)."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")] if p.is_dir()}
        for p in modes:
            p.chmod(0o555)
        return lambda: [p.chmod(m) for p, m in modes.items()]
    if subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True).returncode:
        return None
    if subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], capture_output=True).returncode:
        subprocess.run(["umount", str(folder)], capture_output=True)
        return None
    return lambda: subprocess.run(["umount", str(folder)], capture_output=True)


ROWS = [
    ("kill -9 at 10 random moments of a build", kill_build),
    ("kill -9 at 10 random moments of a write_store", kill_write_store),
    ("6 processes load the same absent dataset", concurrent_loads),
    ("disk full (ENOSPC) during a build", full_disk_build),
    ("read-only cache folder", read_only_cache),
]
