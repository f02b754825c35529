"""The ``mogonet-brca`` dataset: ``card.yaml`` (its catalog entry) and ``builder.py`` (the authors' files -> store)."""
