"""Graph datasets whose samples share one topology (OmniCellTOSG cells).

Every cell is a graph over the *same* signaling network; only the node
features (that cell's abundances) differ. This module keeps that structure
instead of copying it per cell:

* **Storage.** A store holds the topology once, as Zarr arrays
  arrays ``edge_index`` (int64 ``[2, E]`` over the modality's columns) and
  ``edge_type`` (a bit code per edge, :data:`EDGE_KINDS`) under
  :func:`omicsdata.storage.layout.graph_key`, and the node text as the
  Parquet table ``nodes``.
  :func:`encode_topology` builds those arrays; :func:`read_topology` and
  :func:`read_node_text` read them back.

* **Subsetting.** 533k-node graphs are heavy; :func:`select_nodes` picks
  entities by a gene list, a pathway (text match on the node annotations, or
  a list of members) or the top-k most variable entities on the training
  split, optionally widened by k hops; :meth:`Topology.subgraph` returns the
  induced subgraph, relabelled (``torch_geometric.utils.subgraph``).

* **Batching.** :class:`CellGraphDataset` reads a batch of B cells as one
  dense block and yields a :class:`CellGraphBatch`: ``x`` of shape
  ``[B, N, F]`` and *one* ``edge_index`` ``[2, E]`` (the same tensor object
  in every batch, never copied). That is PyG's *static graph* layout:
  message-passing layers with static-graph support (``GCNConv``,
  ``GraphConv``, ``SAGEConv``, ...) take ``conv(batch.x, batch.edge_index)``
  directly and return ``[B, N, C]``. For layers without it (``GATConv``),
  :meth:`CellGraphBatch.to_pyg` builds the usual disjoint-union
  :class:`torch_geometric.data.Batch` (offset edge index) on the fly, for
  that batch only.
"""
from __future__ import annotations

from .dataset import CellGraphBatch, CellGraphDataset
from .select import RowReader, apply_transform, select_nodes
from .topology import (
                       EDGE_KINDS,
                       GRAPH_KEY,
                       NODES_TABLE,
                       Topology,
                       check_edge_index,
                       encode_topology,
                       read_node_text,
                       read_topology,
)

__all__ = ["EDGE_KINDS", "GRAPH_KEY", "NODES_TABLE", "Topology", "check_edge_index", "encode_topology",
           "read_topology", "read_node_text", "select_nodes", "apply_transform", "RowReader", "CellGraphBatch",
           "CellGraphDataset"]
