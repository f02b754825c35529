"""Model modules: each public module here is imported by :func:`zoo.registry.discover`.

One module per model (``@zoo.register_model("name")`` on an Estimator subclass);
a converter for an upstream weight format sits beside its model
(``<model>_upstream.py``, ``@zoo.register_converter("name")``). Modules whose
name starts with ``_`` are private helpers and are not imported by discovery.
"""
