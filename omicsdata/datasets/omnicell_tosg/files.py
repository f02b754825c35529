"""Where the published files come from: a Hub dataset repo at one commit, or a local folder."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import BuildError, FormatError


class _Hub:
    """Files of the Hub dataset repo at one revision, fetched one by one via omicsdata.sources.hf."""

    def __init__(self, repo_id: str, revision: str | None):
        from ...sources import hf

        self.hf, self.repo_id = hf, repo_id
        self.revision = hf.resolve_revision(repo_id, repo_type="dataset", revision=revision)
        self.requested = revision or "main"
        self._files = set(hf.list_files(repo_id, repo_type="dataset", revision=self.revision))
        self.where = f"dataset repo '{repo_id}' at {self.revision}"

    def files(self) -> set[str]:
        return self._files

    def fetch(self, name: str) -> Path:
        return self.hf.download_file(self.repo_id, name, repo_type="dataset", revision=self.revision)

    def rows(self, name: str, range_reads: bool = True, max_gap: int = 0):
        """Row reader of one shard: byte ranges (default) or the whole file downloaded."""
        if not range_reads:
            return _MappedNpy(self.fetch(name), name)
        from .npy_rows import open_hub_npy

        return open_hub_npy(self.repo_id, name, revision=self.revision, max_gap=max_gap)


class _Local:
    """Files of a local folder in the published layout."""

    def __init__(self, folder):
        self.root = Path(folder).expanduser()
        if not self.root.is_dir():
            raise BuildError(f"omnicell-tosg: local_dir {self.root} is not a folder")
        self.revision = None
        self.requested = None
        self.where = f"folder {self.root}"

    def files(self) -> set[str]:
        return {p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file()}

    def fetch(self, name: str) -> Path:
        return self.root / name

    def rows(self, name: str, range_reads: bool = True, max_gap: int = 0):
        return _MappedNpy(self.fetch(name), name)


class _MappedNpy:
    """Row reader over a local ``.npy`` (memory-mapped: only the rows read are touched)."""

    def __init__(self, path: Path, name: str):
        self.arr, self.name, self.source = _load_npy(path, name), name, None
        if self.arr.ndim != 2:
            raise FormatError(name, f"expected a 2-D cells x entities array, got shape {list(self.arr.shape)}")
        self.shape = self.arr.shape
        self.stats = None

    def read_rows(self, rows):
        if len(rows) and int(np.max(rows)) >= self.shape[0]:
            raise FormatError(self.name, f"row {int(np.max(rows))} asked for, the shard has {self.shape[0]} rows")
        return np.asarray(self.arr[np.asarray(rows)])


def _load_npy(path: Path, name: str, mmap: bool = True) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except Exception as e:  # noqa: BLE001
        raise FormatError(name, f"not a readable .npy array: {type(e).__name__}: {e}") from e


