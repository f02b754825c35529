"""The public entry points: ``load``, ``build``, ``verify``, ``cache_info``."""
from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path

from . import paths, storage
from .builders import get_builder
from .catalog import DatasetCard, info
from .errors import BuildError, CorruptStoreError, OmicsDataError, StoreError
from .splits import assign_splits
from .storage import MANIFEST, open_store, read_manifest, verify_store, write_store
from .storage.open import MISSING_MODES


def _is_store_path(x) -> bool:
    if "://" in str(x):
        return True
    if not storage.is_store_dir(x) and (isinstance(x, Path) or os.sep in str(x)):
        with contextlib.suppress(OSError):
            paths.recover(Path(x))  # a write_store killed between the two renames of its publish
    return storage.is_store_dir(x)


def store_path(name: str, version: str | None = None, **options) -> Path:
    """Where the store of ``name`` (at ``version``, default: the catalog's; built with builder
    ``options``, default: none) lives in the cache: one folder per (name, version, options)."""
    card = info(name)
    return paths.store_dir(card.name, str(version or card.version), options)


def built_slots(name: str, version: str | None = None) -> list[Path]:
    """Every built store of ``name`` at ``version`` (default: the catalog's): the default-options
    folder first, then one folder per other set of builder options."""
    card = info(name)
    plain = paths.store_dir(card.name, str(version or card.version))
    if not plain.parent.is_dir():
        return []
    others = sorted(p for p in plain.parent.glob(f"{plain.name}-*") if len(p.name) == len(plain.name) + 9
                    and _is_built(p))
    return ([plain] if _is_built(plain) else []) + others


def _is_built(target: Path) -> bool:
    return (target / MANIFEST).is_file()


def build(name: str, version: str | None = None, force: bool = False, **options) -> Path:
    """Build the store of catalog dataset ``name`` with its builder and return its path.

    Builder ``options`` (e.g. ``projects=["TCGA-BRCA"]`` for gdc-pancancer,
    ``n_patients=10_000`` for demo-pancancer) are passed to the builder and
    recorded in the manifest. An existing store built with the same options
    is kept unless ``force=True``. Concurrent callers (threads or processes)
    wait on a lock and build once; the store is written under a temporary
    name and renamed into place, so a killed build leaves nothing that opens.
    """
    card = info(name)
    version = str(version or card.version)
    target = paths.store_dir(card.name, version, options)  # refuses versions that are not plain folder names
    try:
        with paths.locked(f"build-{card.name}-{target.name}"):
            paths.recover(target)
            paths.clean_stale_tmp(target.parent)
            _clean_stale_work()
            if _is_built(target) and not force:
                try:
                    if read_manifest(target).get("builder_options", {}) == _normalise(options):
                        return target
                except OmicsDataError:
                    pass  # unreadable manifest: rebuild
            from .progress import activity

            with activity(f"{card.name}: building the store {target} (cached for the next load)"):
                _build_locked(card, version, target, options)
    except OSError as e:
        if paths.is_disk_error(e):
            raise paths.disk_error(e, target, f"building dataset '{card.name}' into") from e
        raise
    return target


def _normalise(options: dict) -> dict:
    return paths.normalise_options(options)


def _clean_stale_work() -> None:
    """Remove build scratch folders (``<home>/work/<name>-<pid>``) whose process is gone."""
    work = paths.home() / "work"
    if not work.is_dir():
        return
    for p in work.iterdir():
        pid = p.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not paths.pid_alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True)


def _build_locked(card: DatasetCard, version: str, target: Path, options: dict) -> None:
    builder = get_builder(card["builder"])
    work = paths.home() / "work" / f"{card.name}-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        result = builder(card, work, **options)
    except OmicsDataError:
        raise
    except TypeError as e:
        raise BuildError(f"dataset '{card.name}': bad builder option: {e}") from e
    finally:
        shutil.rmtree(work, ignore_errors=True)
    mdata = result.mdata
    split_cfg = dict(card.get("splits", {}))
    split_info = {"column": "split", "by": split_cfg.get("by"), "stratify": split_cfg.get("stratify"),
                  "seed": split_cfg.get("seed", 0), "fractions": split_cfg.get("fractions", {})}
    if "split" not in mdata.obs.columns:
        by = split_cfg.get("by")
        groups = mdata.obs[by].to_numpy() if by and by in mdata.obs else mdata.obs_names.to_numpy()
        strat = split_cfg.get("stratify")
        labels = mdata.obs[strat].to_numpy() if strat and strat in mdata.obs else None
        mdata.obs["split"] = assign_splits(groups, labels, split_cfg.get("fractions"), split_cfg.get("seed", 0))
        if not split_cfg.get("fractions"):
            from .splits import DEFAULT_FRACTIONS
            split_info["fractions"] = dict(DEFAULT_FRACTIONS)
    mdata.obs["split"] = mdata.obs["split"].astype("category")
    report = dict(result.report)
    report["build_seconds"] = round(time.perf_counter() - t0, 2)
    write_store(
        mdata, target, dataset=card.name, version=version, builder=card["builder"],
        builder_version=str(card.get("builder_version", "1")), builder_options=options,
        obs_fields=card.get("obs_fields", {}), split_info=split_info,
        feature_kinds=result.feature_kinds or {m["name"]: m["feature_kind"] for m in card.get("modalities", [])},
        tables=result.tables, extra={"report": report, **result.extra}, progress=True,
        **dict(card.get("store_options", {})),
    )


def load(name_or_path, version: str | None = None, lazy: bool = True, verify: str = "fast", missing: str = "zeros",
         **options):
    """Open a dataset as a :class:`mudata.MuData`, building and caching it on first use.

    ``name_or_path`` is a catalog name, a store folder or a store URL.
    ``lazy=True`` returns dask-backed matrices and reads only metadata;
    ``lazy=False`` loads into memory. Builder ``options`` given here select
    (and if needed build) a store with exactly those options, in its own
    cache folder. ``verify``: ``"fast"`` (default: small files re-hashed,
    every chunk file present), ``"full"`` (every file re-hashed) or ``"none"``
    (see the README's Integrity section for what each costs). A chunk that
    fails its checksum later raises :class:`CorruptStoreError` naming it.
    The split of every sample is ``mdata.obs["split"]``. ``missing``: ``"zeros"`` (default: every
    modality holds every sample, a zero row where absent, ``obs["has_<modality>"]`` False) or
    ``"drop"`` (each modality holds only its observed samples, as MuData intends).
    """
    if missing not in MISSING_MODES:  # before any build
        raise StoreError(f"missing={missing!r}: use one of {', '.join(MISSING_MODES)}")
    if _is_store_path(name_or_path):
        return open_store(name_or_path, lazy=lazy, verify=verify, missing=missing)
    target = built_store_path(name_or_path, version, **options)
    try:
        return open_store(target, lazy=lazy, verify=verify, missing=missing)
    except CorruptStoreError as e:
        name = info(str(name_or_path)).name
        msg = str(e) if f"dataset '{name}'" in str(e) else f"dataset '{name}': {e}"
        raise CorruptStoreError(msg, e.bad_files) from e


def built_store_path(name_or_path, version: str | None = None, **options) -> Path:
    """The path of a store: a store folder/URL as is; a catalog name built first when needed
    (with exactly these builder ``options``). Raises :class:`StoreError` for a path with no store."""
    if _is_store_path(name_or_path):
        return name_or_path if "://" in str(name_or_path) else Path(name_or_path)
    if isinstance(name_or_path, Path) or os.sep in str(name_or_path):
        raise StoreError(f"{name_or_path}: no omicsdata store there (no {MANIFEST})")
    card = info(str(name_or_path))
    target = paths.store_dir(card.name, str(version or card.version), options)
    if not _is_built(target):
        with contextlib.suppress(OSError):
            paths.recover(target)  # a writer killed between the two renames of its publish
    need = not _is_built(target)
    if not need and options:
        try:
            need = read_manifest(target).get("builder_options", {}) != _normalise(options)
        except OmicsDataError:
            need = True
    if need:
        build(card.name, version=version, force=False, **options)
    return target


storage.set_name_resolver(built_store_path)


def verify(name_or_path, version: str | None = None, **options) -> dict:
    """Re-hash every file of a store against its manifest (a catalog name: the store built with
    builder ``options``, default none).

    Returns the report (``checked``, ``mismatched``, ``missing``, ``unexpected``)
    when all is well; raises :class:`CorruptStoreError` naming each bad file
    otherwise (the report is on ``err.report``).
    """
    if _is_store_path(name_or_path):
        path = Path(name_or_path)
    else:
        path = store_path(str(name_or_path), version, **options)
        slots = [] if options or _is_built(path) else built_slots(str(name_or_path), version)
        if len(slots) == 1:  # no options given, one store built (with options): that one
            path = slots[0]
    if not _is_built(path):
        raise StoreError(f"{path}: no store there; build it with od.build('{name_or_path}')")
    rep = verify_store(path)
    if not rep["ok"]:
        parts = []
        for key in ("mismatched", "missing", "unexpected"):
            if rep[key]:
                parts.append(f"{key}: {', '.join(rep[key])}")
        err = CorruptStoreError(f"{path}: store does not match its manifest ({'; '.join(parts)}); "
                                "rebuild with od.build(name, force=True)", rep["mismatched"] + rep["missing"])
        err.report = rep
        raise err
    rep["path"] = str(path)
    return rep


def cache_info() -> list[dict]:
    """Every store in the cache: name, version, size on disk, samples."""
    out = []
    root = paths.home() / "stores"
    if not root.is_dir():
        return out
    for name_dir in sorted(root.iterdir()):
        if not name_dir.is_dir():
            continue
        for vdir in sorted(name_dir.iterdir()):
            if vdir.name.startswith(paths.TMP_MARK) or not vdir.is_dir():
                continue
            size = sum(f.stat().st_size for f in vdir.rglob("*") if f.is_file())
            try:
                n = read_manifest(vdir)["n_obs"]
                ok = True
            except OmicsDataError:
                n, ok = None, False
            out.append({"name": name_dir.name, "version": vdir.name, "bytes": size, "n_obs": n,
                        "path": str(vdir), "valid_manifest": ok})
    return out
