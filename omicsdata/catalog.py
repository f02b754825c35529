"""The dataset catalog: one validated YAML card per dataset.

Cards come from, in this order (a later card with the same name replaces an earlier one):

1. the package: ``omicsdata/datasets/<name_with_underscores>/card.yaml``, read
   with :mod:`importlib.resources` (works from a wheel as from the source tree);
2. the packages named by the ``omicsdata.datasets`` entry point group
   (``card.yaml`` in the package folder or its direct subfolders);
3. every folder named in ``$OMICSDATA_CATALOG`` (``os.pathsep``-separated):
   ``<folder>/<name>.yaml`` or ``<folder>/<name>/card.yaml`` (a ``datasets/``
   subfolder is used when present), so a user can add a local dataset without
   touching the package.

JSON schemas live in ``omicsdata/schemas/`` (:func:`load_schema`, :func:`validate`).
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import os
import warnings
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .datasets import CARD_FILE, builtin_card_files, entry_point_card_files, folder_name
from .errors import CatalogError, UnknownDatasetError

SCHEMA_DIR = files("omicsdata.schemas")
DATASETS_DIR = files("omicsdata.datasets")  # the shipped dataset folders: DATASETS_DIR / "demo_pancancer" / "card.yaml"


def schema_names() -> list[str]:
    """Names of the shipped JSON schemas (``dataset``, ``model``, ``store``)."""
    suffix = ".schema.json"
    return sorted(t.name[: -len(suffix)] for t in SCHEMA_DIR.iterdir() if t.name.endswith(suffix))


@lru_cache(maxsize=None)
def load_schema(name: str) -> dict:
    """Load the JSON schema ``omicsdata/schemas/<name>.schema.json``."""
    resource = SCHEMA_DIR.joinpath(f"{name}.schema.json")
    if not resource.is_file():
        raise CatalogError(f"no JSON schema named '{name}' (known: {', '.join(schema_names())})")
    return json.loads(resource.read_text(encoding="utf-8"))


def validate(instance: Any, schema_name: str, where: str, error_cls=CatalogError) -> None:
    """Validate against a JSON schema; the error names ``where`` and the field path."""
    validator = jsonschema.Draft202012Validator(load_schema(schema_name))
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        field = ".".join(str(p) for p in e.absolute_path) or "<root>"
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise error_cls(f"{where}: field '{field}': {e.message}{more}")


@dataclasses.dataclass(frozen=True)
class DatasetCard:
    """A validated catalog entry. ``repr`` is a readable card."""

    raw: dict
    path: Any  # the card file: a Path, or a traversable inside an installed package

    def __getattr__(self, key):  # entry fields as attributes: card.version, card.modalities
        try:
            return self.__dict__["raw"][key]
        except KeyError:
            raise AttributeError(key) from None

    def __getitem__(self, key):
        return self.raw[key]

    def get(self, key, default=None):
        return self.raw.get(key, default)

    @property
    def name(self) -> str:
        return self.raw["name"]

    @property
    def version(self) -> str:
        return str(self.raw["version"])

    @property
    def modality_names(self) -> list[str]:
        return [m["name"] for m in self.raw.get("modalities", [])]

    def __repr__(self) -> str:
        r = self.raw
        lines = [f"{r['name']} v{r['version']} - {r['title']}"]
        if r.get("simulated"):
            lines.append("  SIMULATED DATA (not real patients)")
        lines.append("  " + " ".join(r["description"].split()))
        src = r["source"]
        loc = src.get("location", "")
        rev = f" @ {src['revision']}" if src.get("revision") else ""
        lines.append(f"  source:     {src['kind']} {loc}{rev}".rstrip())
        lines.append("  modalities:")
        for m in r.get("modalities", []):
            n = m.get("n_features")
            lines.append(f"    - {m['name']:<12} {m['feature_kind']}" + (f" ({n:,} features)" if n else ""))
        if r.get("obs_fields"):
            lines.append("  obs fields: " + ", ".join(
                f"{k}" + (f" [{v['unit']}]" if v.get("unit") else "") for k, v in r["obs_fields"].items()))
        lines.append("  tasks:      " + ", ".join(f"{t['name']} ({t['kind']})" for t in r.get("tasks", [])))
        sp = r.get("splits", {})
        if sp.get("fractions"):
            fr = ", ".join(f"{k} {v:g}" for k, v in sp["fractions"].items())
            by, strat, seed = sp.get("by", "sample"), sp.get("stratify", "-"), sp.get("seed", 0)
            lines.append(f"  splits:     {fr} by {by}, stratified by {strat}, seed {seed}")
        es = r.get("expected_size")
        if es:
            parts = []
            if "n_samples" in es:
                parts.append(f"{es['n_samples']:,} samples")
            if "bytes" in es:
                parts.append(f"{es['bytes'] / 1e9:.2f} GB")
            lines.append("  size:       " + ", ".join(parts))
        lines.append(f"  licence:    {r['license']}")
        lines.append(f"  citation:   {' '.join(r['citation'].split())}")
        for kind, text in self.evidence():
            lines.append(f"  {kind + ':':<11} {text}")
        return "\n".join(lines)

    def evidence(self) -> list[tuple[str, str]]:
        """The card's ``assumptions`` as ``(kind, text)``: kind ``confirmed`` (checked against the
        publisher's files, the file named in the text), ``unverifiable`` or ``assumed`` (the default)."""
        out = []
        for a in self.raw.get("assumptions", []):
            text = " ".join(str(a).split())
            head, _, rest = text.partition(":")
            tag = head.split("(")[0].strip().upper()
            kind = {"CONFIRMED": "confirmed", "ASSUMED": "assumed", "NOT VERIFIABLE": "unverifiable"}.get(tag)
            if not kind:
                out.append(("assumed", text))
                continue
            source = head[len(head.split("(")[0]):].strip()  # "(file read)" when the tag names it
            out.append((kind, f"{rest.strip()} {source}".strip()))
        return out

    _repr_pretty_ = lambda self, p, cycle: p.text(repr(self))  # noqa: E731


def _catalog_dirs(kind: str) -> list[Path]:
    """The user folders for ``kind``: ``<home>/catalog/<kind>/`` (entries written by
    :func:`omicsdata.import_anndata`), then each folder of ``$OMICSDATA_CATALOG`` (its ``<kind>/``
    subfolder when present); a later folder's entry replaces an earlier one of the same name."""
    dirs = []
    home = os.environ.get("OMICSDATA_HOME")
    if not home:  # the same default as omicsdata.paths.home(), without creating it
        import platformdirs

        home = platformdirs.user_cache_dir("omicsdata")
    dirs.append(Path(home).expanduser() / "catalog" / kind)
    for d in os.environ.get("OMICSDATA_CATALOG", "").split(os.pathsep):
        if d:
            p = Path(d).expanduser()
            dirs.append(p / kind if (p / kind).is_dir() else p)
    return dirs


def _expected_name(path) -> tuple[str, str]:
    """(what the card's name must match, what to call it in errors) for a card file."""
    if path.name == CARD_FILE and getattr(path, "parent", None) is not None:
        return folder_name(path.parent.name), f"folder name '{path.parent.name}'"
    stem = path.name.rsplit(".", 1)[0]
    return stem, f"file name '{stem}'"


def read_entry(path, schema: str = "dataset") -> dict:
    """Read and validate one YAML entry: ``<name>.yaml`` or ``<name_with_underscores>/card.yaml``.

    ``path`` is a path or an :mod:`importlib.resources` traversable.
    """
    path = Path(path) if isinstance(path, str) else path
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise CatalogError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise CatalogError(f"{path}: a catalog entry must be a mapping, got {type(data).__name__}")
    validate(data, schema, str(path))
    if "version" in data:  # the version names a cache folder: one plain path component
        v = str(data["version"])
        if not v or v in (".", "..") or "/" in v or "\\" in v or v.startswith(".") or os.path.isabs(v) or "\x00" in v:
            raise CatalogError(f"{path}: field 'version': {v!r} is not a plain folder name (no '/', '\\', '..', "
                               "absolute paths or leading '.')")
    expected, what = _expected_name(path)
    name = data["name"]
    if (folder_name(name) if path.name == CARD_FILE else name) != expected:
        raise CatalogError(f"{path}: field 'name': '{name}' must match the {what}")
    return data


def user_card_files(kind: str = "datasets") -> list[Path]:
    """The card files in the ``$OMICSDATA_CATALOG`` folders (``kind``: ``datasets`` or ``models``)."""
    found: list[Path] = []
    for d in _catalog_dirs(kind):
        if d.is_dir():
            found.extend(sorted(p for p in d.glob("*.y*ml") if p.is_file()))  # a folder named x.yaml is no card
            found.extend(sorted(p for p in d.glob(f"*/{CARD_FILE}") if p.is_file()) if kind == "datasets" else [])
    return found


def _entries(card_files: list, schema: str, bad: dict | None = None) -> dict[str, tuple[dict, Any]]:
    """Read every card. With ``bad`` (a dict), a malformed card is skipped and recorded as
    ``{expected name: CatalogError}`` instead of raising, so one bad file hides nothing else."""
    found: dict[str, tuple[dict, Any]] = {}
    for f in card_files:
        try:
            data = read_entry(f, schema)
        except CatalogError as e:
            if bad is None:
                raise
            bad[_expected_name(f)[0]] = e
            continue
        found[data["name"]] = (data, f)
    return found


_warned: set[str] = set()


def _user_entries(kind: str, schema: str) -> tuple[dict, dict]:
    """The user catalog's entries and its malformed files (``{name: CatalogError}``), each warned about once."""
    bad: dict[str, CatalogError] = {}
    found = _entries(user_card_files(kind), schema, bad)
    for e in bad.values():
        if str(e) not in _warned:
            _warned.add(str(e))
            warnings.warn(f"skipping a malformed catalog entry: {e}", stacklevel=3)
    return found, bad


def dataset_entries() -> dict[str, tuple[dict, Any]]:
    """Every dataset card: ``{name: (validated dict, card file)}``, later sources replacing earlier ones.

    A malformed user card (``$OMICSDATA_CATALOG``, ``<home>/catalog``) is skipped with a warning
    naming it; :func:`info` raises its error when that name is asked for."""
    found = _entries(builtin_card_files() + entry_point_card_files(), "dataset")
    user, _ = _user_entries("datasets", "dataset")
    found.update(user)
    return found


def list_datasets() -> list[str]:
    """Names of every dataset in the catalog (package, entry points and ``$OMICSDATA_CATALOG``)."""
    return sorted(dataset_entries())


def info(name: str) -> DatasetCard:
    """The catalog card of ``name``; unknown names raise with close matches."""
    entries = dataset_entries()
    if name not in entries:
        _, bad = _user_entries("datasets", "dataset")
        key = folder_name(name) if folder_name(name) in bad else name
        if key in bad:
            raise CatalogError(f"dataset '{name}': its catalog entry is malformed: {bad[key]}") from None
        raise UnknownDatasetError(unknown_message("dataset", name, list(entries)))
    data, path = entries[name]
    return DatasetCard(data, path)


def card_path(name: str):
    """The card file of dataset ``name`` (a path, or a traversable inside an installed package)."""
    return info(name).path


def unknown_message(kind: str, name: str, known: list[str]) -> str:
    """``unknown <kind> '<name>'`` with up to three close matches and the known names."""
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return f"unknown {kind} '{name}'.{hint} Known {kind}s: {', '.join(sorted(known)) or '(none)'}"
