"""The dataset catalog: one YAML file per dataset, validated when read.

Entries come from the package's ``catalog/datasets/`` and, in addition, from
every folder named in ``$OMICSDATA_CATALOG`` (``os.pathsep``-separated), so a
user can add a local dataset without touching the package. A user entry with
the name of a built-in one replaces it.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .errors import CatalogError, UnknownDatasetError

REPO_ROOT = Path(__file__).resolve().parents[1]
CATALOG_DIR = REPO_ROOT / "catalog"
SCHEMA_DIR = REPO_ROOT / "schemas"


@lru_cache(maxsize=None)
def load_schema(name: str) -> dict:
    """Load ``schemas/<name>.schema.json``."""
    path = SCHEMA_DIR / f"{name}.schema.json"
    with open(path) as fh:
        return json.load(fh)


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
    path: Path

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
            lines.append(f"  splits:     {fr} by {sp.get('by', 'sample')}, stratified by {sp.get('stratify', '-')}, seed {sp.get('seed', 0)}")
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
        for a in r.get("assumptions", []):
            lines.append(f"  assumption: {a}")
        return "\n".join(lines)

    _repr_pretty_ = lambda self, p, cycle: p.text(repr(self))  # noqa: E731


def _catalog_dirs(kind: str) -> list[Path]:
    dirs = [CATALOG_DIR / kind]
    extra = os.environ.get("OMICSDATA_CATALOG")
    if extra:
        for d in extra.split(os.pathsep):
            if d:
                p = Path(d).expanduser()
                dirs.append(p / kind if (p / kind).is_dir() else p)
    return dirs


def read_entry(path: str | Path, schema: str = "dataset") -> dict:
    """Read and validate one YAML entry file."""
    path = Path(path)
    try:
        with open(path) as fh:
            data = yaml.safe_load(fh)
    except yaml.YAMLError as e:
        raise CatalogError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise CatalogError(f"{path}: a catalog entry must be a mapping, got {type(data).__name__}")
    validate(data, schema, str(path))
    if path.stem != data["name"]:
        raise CatalogError(f"{path}: field 'name': '{data['name']}' must match the file name '{path.stem}'")
    return data


def _entries(kind: str, schema: str) -> dict[str, tuple[dict, Path]]:
    found: dict[str, tuple[dict, Path]] = {}
    for d in _catalog_dirs(kind):
        if not d.is_dir():
            continue
        for f in sorted(d.glob("*.y*ml")):
            data = read_entry(f, schema)
            found[data["name"]] = (data, f)
    return found


def list_datasets() -> list[str]:
    """Names of every dataset in the catalog (built-in plus ``$OMICSDATA_CATALOG``)."""
    return sorted(_entries("datasets", "dataset"))


def info(name: str) -> DatasetCard:
    """The catalog card of ``name``; unknown names raise with close matches."""
    entries = _entries("datasets", "dataset")
    if name not in entries:
        raise UnknownDatasetError(unknown_message("dataset", name, list(entries)))
    data, path = entries[name]
    return DatasetCard(data, path)


def unknown_message(kind: str, name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return f"unknown {kind} '{name}'.{hint} Known {kind}s: {', '.join(sorted(known)) or '(none)'}"


def model_entries() -> dict[str, tuple[dict, Path]]:
    """Model catalog entries (``catalog/models/*.yaml``), validated by ``schemas/model.schema.json``."""
    return _entries("models", "model")
