"""Text-bearing tables: Parquet shards beside the Zarr matrices, read lazily with pyarrow.

>>> import omicsdata as od
>>> od.text.list_tables("biomedsql")                 # tables of a store
>>> t = od.text.read_table("biomedsql", "benchmark", columns=["question"])
>>> stream = od.text.ParquetStream("biology-instructions", "instructions", batch_size=64,
...                                where={"split": "train"}, shuffle=True, seed=0)
>>> for batch in torch.utils.data.DataLoader(stream, batch_size=None, num_workers=2): ...

Dataset-specific readers: :class:`InstructionDataset` / :func:`chat_samples`
(Biology-Instructions, chat-formatted), :class:`TextOmicsDataset`
(expression signature, molecule description, SMILES).
"""
from __future__ import annotations

from .chat import record_to_messages, to_messages
from .tables import list_tables, read_table, store_root, table_dataset, table_files

__all__ = ["ParquetStream", "list_tables", "read_table", "store_root", "table_dataset", "table_files",
           "to_messages", "record_to_messages", "InstructionDataset", "chat_samples", "TextOmicsDataset"]


def __getattr__(name):  # torch-facing pieces load lazily
    if name == "ParquetStream":
        from .stream import ParquetStream

        return ParquetStream
    if name in {"InstructionDataset", "chat_samples"}:
        from . import instructions

        return getattr(instructions, name)
    if name == "TextOmicsDataset":
        from .textomics import TextOmicsDataset

        return TextOmicsDataset
    raise AttributeError(f"module 'omicsdata.text' has no attribute '{name}'")
