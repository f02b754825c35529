"""JSON schemas of the catalog entries (dataset, model) and of the store manifest, read with importlib.resources."""
