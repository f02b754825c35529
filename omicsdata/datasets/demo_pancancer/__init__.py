"""The ``demo-pancancer`` dataset: ``card.yaml`` (its catalog entry) and ``builder.py`` (raw files -> store)."""
