"""Builder of ``mogonet-rosmap``: the MOGONET authors' ROSMAP files (AD vs normal control) -> store.

Fetching, checking and reading are shared with ``mogonet-brca`` in
:mod:`omicsdata.builders.mogonet_files`; this module names the folder and the classes.
"""
from __future__ import annotations

from ...builders import BuildResult, register
from ...builders.mogonet_files import build_from_card

FOLDER = "ROSMAP"
CLASSES = ["Normal Control", "Alzheimer's Disease"]  # code 0, 1 (ROSMAP/README.md)


@register("mogonet-rosmap")
def build(card, workdir, base_url: str | None = None, val_fraction: float = 0.2, seed: int = 0) -> BuildResult:
    """Options: ``base_url`` (default the card's ``source.location``: the authors' repository at the
    pinned commit; a local folder holding ``ROSMAP/`` also works), ``val_fraction`` (share of the
    published training samples carved into ``val``, stratified by label; default 0.2) and ``seed`` (0)."""
    return build_from_card(card, FOLDER, CLASSES, base_url=base_url, val_fraction=val_fraction, seed=seed)
