"""The ``omicsdata`` command line.

::

    omicsdata list
    omicsdata info NAME
    omicsdata build NAME [--opt key=value ...] [--version V] [--force]
    omicsdata download NAME [--opt key=value ...]
    omicsdata verify NAME_OR_PATH
    omicsdata cache [--clear NAME]
    omicsdata import PATH --name NAME [--label COL] [--split-by COL] [--preprocess scverse]

Every command has ``--help``. An :class:`omicsdata.OmicsDataError` ends the
command with exit code 1 and its message on stderr (no traceback).
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import yaml

from .errors import OmicsDataError, UnknownDatasetError


def _parse_opts(pairs: list[str] | None) -> dict:
    """``["n_patients=1000", "full_size=true"]`` -> ``{"n_patients": 1000, "full_size": True}``.

    Values are read as YAML scalars/lists, so numbers, booleans and
    ``[a, b]`` lists get their natural types; anything else stays a string.
    """
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise OmicsDataError(f"--opt '{pair}': expected key=value")
        try:
            out[key] = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            out[key] = value
    return out


def _human(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header), fmt.format(*["-" * w for w in widths])]
    lines += [fmt.format(*[str(c) for c in r]) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def cmd_list(args) -> int:
    from . import paths
    from .api import _is_built, built_slots
    from .catalog import info, list_datasets

    rows = []
    for name in list_datasets():
        card = info(name)
        built = _is_built(paths.store_dir(card.name, card.version)) or bool(built_slots(name))
        rows.append([name, card.version, "yes" if built else "no", card.title])
    print(_table(rows, ["name", "version", "cached", "title"]))
    return 0


def cmd_info(args) -> int:
    from .catalog import info

    print(repr(info(args.name)))
    return 0


def _store_identity(target: Path) -> tuple | None:
    """``(created, inode, mtime_ns)`` of a store's manifest, None where no readable store is: a
    rebuild replaces the manifest, so an unchanged identity means the store was reused."""
    from .storage import MANIFEST, read_manifest

    try:
        st = (target / MANIFEST).stat()
        return read_manifest(target).get("created"), st.st_ino, st.st_mtime_ns
    except (OSError, OmicsDataError):
        return None


def cmd_build(args) -> int:
    """``built <path> in N s`` when a store was written, ``reused <path> (built <date>)`` when the
    cached store with these options was kept."""
    import time

    from .api import build, store_path

    opts = _parse_opts(args.opt)
    before = None if args.force else _store_identity(store_path(args.name, args.version, **opts))
    t0 = time.perf_counter()
    path = build(args.name, version=args.version, force=args.force, **opts)
    after = _store_identity(path)
    if before is not None and before == after:
        print(f"reused {path} (built {after[0] or 'at an unknown date'})")
    else:
        print(f"built {path} in {time.perf_counter() - t0:.1f} s")
    return 0


def cmd_download(args) -> int:
    from .builders import get_downloader
    from .catalog import info

    card = info(args.name)
    fn = get_downloader(card["builder"])
    if fn is None:
        kind = card["source"]["kind"]
        why = "its data is simulated locally" if kind == "synthetic" else f"its builder '{card['builder']}' has no download step"
        print(f"{card.name}: nothing to download ({why}); `omicsdata build {card.name}` makes the store")
        return 0
    files = fn(card, **_parse_opts(args.opt)) or []
    for f in files:
        print(f)
    print(f"{card.name}: {len(files)} raw file(s) in the cache")
    return 0


def cmd_verify(args) -> int:
    from .api import verify

    rep = verify(args.target, version=args.version)
    print(f"ok: {rep['checked']} files match the manifest ({rep['path']})")
    return 0


def cmd_cache(args) -> int:
    from . import paths
    from .api import cache_info
    from .catalog import list_datasets, unknown_message

    entries = cache_info()
    if args.clear:
        name = args.clear
        mine = [e for e in entries if e["name"] == name]
        if not mine:
            known = list_datasets()
            if name not in known:
                raise UnknownDatasetError(unknown_message("dataset", name, sorted(set(known) | {e["name"] for e in entries})))
            print(f"{name}: nothing cached")
            return 0
        for e in mine:
            target = Path(e["path"])
            with paths.locked(f"build-{e['name']}-{e['version']}"):
                gone = paths.tmp_sibling(target)
                target.rename(gone)  # atomic: the store vanishes at once, then is deleted
                shutil.rmtree(gone, ignore_errors=True)
            print(f"removed {e['name']} {e['version']} ({_human(e['bytes'])}) {target}")
        return 0
    print(f"cache: {paths.home()}")
    if not entries:
        print("(empty)")
        return 0
    rows = [[e["name"], e["version"], e["n_obs"] if e["n_obs"] is not None else "?", _human(e["bytes"]),
             "ok" if e["valid_manifest"] else "BAD MANIFEST"] for e in entries]
    print(_table(rows, ["name", "version", "samples", "size", "manifest"]))
    return 0


def cmd_import(args) -> int:
    """``omicsdata import PATH --name NAME``: .h5mu files go through import_mudata, the rest import_anndata."""
    from .importers import import_anndata, import_mudata

    kw = dict(label=args.label, split_by=args.split_by, preprocess=args.preprocess, seed=args.seed,
              overwrite=args.overwrite)
    if str(args.path).endswith(".h5mu"):
        target = import_mudata(args.path, args.name, **kw)
    else:
        target = import_anndata(args.path, args.name, modality=args.modality, **kw)
    print(f"imported {args.path} as '{args.name}': {target}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="omicsdata", description="Multi-omics datasets by name: catalog, build, verify, cache.")
    p.add_argument("--version", action="version", version=f"omicsdata {_pkg_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    s = sub.add_parser("list", help="list catalog datasets",
                       description="List every dataset in the catalog (built-in and $OMICSDATA_CATALOG).")
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("info", help="show a dataset's card",
                       description="Show a dataset's catalog card.")
    s.add_argument("name")
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("build", help="build a dataset's store",
                       description="Build (or reuse) the store of a catalog dataset.")
    s.add_argument("name")
    s.add_argument("--opt", action="append", metavar="KEY=VALUE", help="builder option (repeatable), e.g. --opt n_patients=1000")
    s.add_argument("--version", dest="version", default=None, help="dataset version (default: the catalog's)")
    s.add_argument("--force", action="store_true", help="rebuild even if a store with these options exists")
    s.set_defaults(func=cmd_build)

    s = sub.add_parser("download", help="fetch raw files without building",
                       description="Fetch a dataset's raw files into the cache without building the store.")
    s.add_argument("name")
    s.add_argument("--opt", action="append", metavar="KEY=VALUE", help="download option (repeatable)")
    s.set_defaults(func=cmd_download)

    s = sub.add_parser("verify", help="re-hash a store against its manifest",
                       description="Re-hash every file of a store (catalog name or store folder) against its manifest; "
                                   "names each bad file.")
    s.add_argument("target", metavar="NAME_OR_PATH")
    s.add_argument("--version", dest="version", default=None, help="dataset version (default: the catalog's)")
    s.set_defaults(func=cmd_verify)

    s = sub.add_parser("import", help="import an .h5ad/.h5mu as a local dataset",
                       description="Import an AnnData (.h5ad) or MuData (.h5mu) file, streamed in row blocks, as a "
                                   "cached store plus a local catalog entry (od.load(NAME) opens it).")
    s.add_argument("path")
    s.add_argument("--name", required=True, help="dataset name (lower-case letters, digits, '-')")
    s.add_argument("--label", default=None, help="obs column of the labels (splits stratified by it)")
    s.add_argument("--split-by", dest="split_by", default=None, help="obs column of the groups (donor): no group in two splits")
    s.add_argument("--preprocess", choices=["scverse"], default=None,
                   help="normalise total, log1p, highly variable genes (fitted on train cells)")
    s.add_argument("--modality", default="rna", help="modality name of an .h5ad's X (default rna)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--overwrite", action="store_true", help="replace an earlier import of NAME")
    s.set_defaults(func=cmd_import)

    s = sub.add_parser("cache", help="list or clear cached stores",
                       description="List the stores in the cache, or remove one dataset's stores.")
    s.add_argument("--clear", metavar="NAME", help="remove every cached version of NAME")
    s.set_defaults(func=cmd_cache)
    return p


def _pkg_version() -> str:
    from . import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (1 with a one-line message on OmicsDataError)."""
    from .progress import cli_stage_lines

    args = build_parser().parse_args(argv)
    try:
        with cli_stage_lines():  # progress: a bar in a terminal, one line per stage otherwise
            return int(args.func(args) or 0)
    except OmicsDataError as e:
        print(f"omicsdata {args.command}: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    except OSError as e:  # a full or read-only disk, a missing file given on the command line
        print(f"omicsdata {args.command}: error: {type(e).__name__}: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
