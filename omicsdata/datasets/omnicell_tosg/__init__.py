"""The ``omnicell-tosg`` dataset: ``card.yaml`` (its catalog entry) and ``builder.py`` (raw files -> store)."""
