"""Every failure omicsdata raises is an :class:`OmicsDataError`.

Each message names the dataset, file or field that is wrong, so a user can
act on it without reading a traceback.
"""
from __future__ import annotations


class OmicsDataError(Exception):
    """Base class of all omicsdata errors."""


class UnknownDatasetError(OmicsDataError, KeyError):
    """A dataset (or model) name is not in the catalog."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class CatalogError(OmicsDataError, ValueError):
    """A catalog entry is malformed; the message names the file and field."""


class StoreError(OmicsDataError):
    """A store cannot be opened or written."""


class CorruptStoreError(StoreError):
    """Stored bytes do not match their recorded sha256."""

    def __init__(self, message: str, bad_files: list[str] | None = None):
        super().__init__(message)
        self.bad_files = list(bad_files or [])


class ManifestError(StoreError, ValueError):
    """A store manifest violates ``schemas/store.schema.json``."""


class BuildError(OmicsDataError):
    """A builder could not produce a dataset."""


class DownloadError(OmicsDataError):
    """A download failed after retries, or its bytes are wrong."""


class ChecksumError(DownloadError):
    """A downloaded file's md5/sha256 does not match the expected value."""


class UnsafeArchiveError(DownloadError):
    """An archive member would escape the extraction folder (absolute path, '..', link)."""


class FormatError(OmicsDataError, ValueError):
    """A raw file does not follow its format; names the file and, where known, the line."""

    def __init__(self, path, message: str, line: int | None = None):
        where = f"{path}" + (f", line {line}" if line is not None else "")
        super().__init__(f"{where}: {message}")
        self.path = str(path)
        self.line = line


class SchemaMismatchError(OmicsDataError, ValueError):
    """Input data does not match what a model or loader expects."""
