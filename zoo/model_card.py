"""The model card (``README.md``) written into every checkpoint folder.

Hub-style YAML front matter (licence, library, tags, data set), a table of
what the model was trained on, a plain metrics table (split, n, metric,
value; no ``model-index``), what the checkpoint holds about the training data
(no labels), and how to use it.
"""
from __future__ import annotations

import json

NO_LABELS = ("This checkpoint holds no training labels: no sample's survival time, event indicator or class "
             "is stored, only fitted parameters.")
SURVIVAL_STEPS = ("For survival it keeps only two step functions: the Breslow baseline cumulative hazard at the "
                  "distinct event times (for `predict_survival_function`) and an aggregate censoring-survival "
                  "function (for IPCW metrics); neither links a time to a sample.")


def _dataset_license(name: str | None) -> str | None:
    if not name:
        return None
    try:
        import omicsdata as od

        return od.info(name).get("license")
    except Exception:  # an unknown or user data set: no licence to inherit
        return None


def _front_matter(model_type: str, dataset: str | None, lic: str) -> list[str]:
    lines = ["---", f"license: {lic.lower()}", "library_name: omicszoo", f"tags: [omicszoo, {model_type}, multi-omics]"]
    if dataset:
        lines.append(f"datasets: [{dataset}]")
    return lines + ["---", ""]


def _summary(est, schema: dict, lic: str) -> list[str]:
    d = schema.get("data", {})
    mods = ", ".join(f"{m} ({len(v['features'])})" for m, v in schema["modalities"].items())
    return ["| | |", "| --- | --- |",
            f"| architecture | `{est.model_type}` ({type(est).__name__}) |",
            f"| data set | {d.get('dataset') or '(in-memory data)'} v{d.get('dataset_version') or '?'} |",
            f"| builder options | `{json.dumps(d.get('builder_options'))}` |",
            f"| training split | {d.get('split')} ({d.get('n_train')} samples) |",
            f"| modalities | {mods} |",
            f"| tasks | {', '.join(schema['tasks'])} |",
            f"| epochs (early stopping) | {d.get('n_epochs')} (best validation score {d.get('best_val_score')}) |",
            f"| licence | {lic} |", ""]


def _metrics(metrics: dict) -> list[str]:
    if not metrics:
        return []
    lines = ["## Metrics", "", "| split | n | metric | value |", "| --- | --- | --- | --- |"]
    for split, res in metrics.items():
        for k, v in res.items():
            if k in ("split", "n"):
                continue
            value = f"{v:.4f}" if isinstance(v, (int, float)) else str(v)
            lines.append(f"| {split} | {res.get('n')} | {k} | {value} |")
    return lines + [""]


def model_card(est, schema: dict, license: str | None = None, extra: dict | None = None) -> str:
    """The ``README.md`` text for fitted ``est`` whose checkpoint schema is ``schema``.

    ``extra``: optional ``title``, ``description`` and ``license`` for the card.
    """
    extra = extra or {}
    d = schema.get("data", {})
    lic = license or extra.get("license") or _dataset_license(d.get("dataset")) or "other"
    survival = "survival" in schema["tasks"]
    lines = _front_matter(est.model_type, d.get("dataset"), lic)
    lines += [f"# {extra.get('title') or est.model_type + ' on ' + (d.get('dataset') or '(in-memory data)')}", ""]
    if extra.get("description"):
        lines += [extra["description"], ""]
    lines += _summary(est, schema, lic)
    lines += _metrics(getattr(est, "metrics_", None) or {})
    lines += ["## Training data in this checkpoint", "", NO_LABELS + (" " + SURVIVAL_STEPS if survival else ""), ""]
    lines += ["## Use", "", "```python", "import zoo",
              "model = zoo.Estimator.from_pretrained(\"<this folder or repo id>\")",
              "pred = model.predict(mdata)   # features are aligned by name to schema.json", "```", ""]
    if survival:
        lines += ["Sign convention: higher risk = shorter survival.", ""]
    return "\n".join(lines)
