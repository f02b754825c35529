"""Where the text-bearing builders (biomedsql, textomics, biology-instructions, target-qa) get files.

Either a Hugging Face Hub dataset repo (``card.source.location`` at the
pinned ``card.source.revision``, fetched through :mod:`omicsdata.sources.hf`)
or, with the builder option ``local_dir``, a local folder in the same layout.
"""
from __future__ import annotations

import fnmatch
from pathlib import Path

from ..errors import BuildError


class RepoFiles:
    """The files of one dataset repo (Hub or local folder) in its published layout."""

    def __init__(self, card, local_dir: str | None = None, repo_id: str | None = None,
                 revision: str | None = None):
        self.name = card.name
        src = dict(card.get("source", {}))
        self.local = Path(local_dir).expanduser() if local_dir else None
        if self.local is not None:
            if not self.local.is_dir():
                raise BuildError(f"{self.name}: local_dir {self.local} is not a folder")
            self.where = str(self.local)
            self._files = sorted(p.relative_to(self.local).as_posix() for p in self.local.rglob("*") if p.is_file())
            return
        if src.get("kind") != "hf" and repo_id is None:
            raise BuildError(f"{self.name}: the source files are not published yet; build from a local folder "
                             f"in the documented layout with od.build('{self.name}', local_dir=...)")
        from ..sources import hf

        self.repo_id = repo_id or src["location"]
        self.revision = hf.resolve_revision(self.repo_id, repo_type="dataset", revision=revision or src.get("revision"))
        self.where = f"hf dataset {self.repo_id}@{self.revision}"
        self._files = hf.list_files(self.repo_id, repo_type="dataset", revision=self.revision)

    @property
    def files(self) -> list[str]:
        return list(self._files)

    def match(self, *patterns: str) -> list[str]:
        """Repo paths matching any of the glob ``patterns`` (sorted)."""
        return sorted({f for f in self._files for p in patterns if fnmatch.fnmatch(f, p)})

    def path(self, rel: str) -> Path:
        """Local path of repo file ``rel`` (downloaded into the HF cache if from the Hub)."""
        if rel not in self._files:
            raise BuildError(f"{self.name}: no file '{rel}' in {self.where}")
        if self.local is not None:
            return self.local / rel
        from ..sources import hf

        return hf.download_file(self.repo_id, rel, repo_type="dataset", revision=self.revision)

    def provenance(self) -> dict:
        return {"source": self.where}
