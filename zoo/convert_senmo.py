"""Deprecated location: the SeNMo upstream converter lives in :mod:`zoo.models.senmo_upstream`."""
from __future__ import annotations

from .models.senmo_upstream import authors_features, convert, infer_architecture, load_upstream_state, order_folds

__all__ = ["authors_features", "convert", "infer_architecture", "load_upstream_state", "order_folds"]
