"""Deprecated location: the SeNMo upstream converter lives in :mod:`zoo.models.senmo_upstream`."""
from __future__ import annotations

from .models.senmo_upstream import convert, infer_architecture, load_upstream_state, read_features_file

__all__ = ["convert", "infer_architecture", "load_upstream_state", "read_features_file"]
