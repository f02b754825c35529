"""The model card (``README.md``) written into every checkpoint folder.

Hub-style YAML front matter (licence, library, tags, data set and a
``model-index`` block holding ``est.metrics_``, in the layout of the Hub's
model-card spec), a table of what the model was trained on, a plain metrics
table (split, n, metric, value), what the checkpoint holds about the training
data (no labels), and how to use it.
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


_HUB_TASK = {"classification": "tabular-classification", "regression": "tabular-regression"}


def _number(v):
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if f == f and abs(f) != float("inf") else None  # NaN/inf are not valid metric values


def model_index(name: str, tasks: list[str], dataset: str | None, metrics: dict) -> list[dict]:
    """The Hub ``model-index`` list for ``metrics`` (``{split: {metric: value, "n": ...}}``).

    One result per (task, split): ``task.type`` is the Hub task id where one exists
    (classification -> ``tabular-classification``), else the zoo task name;
    ``dataset`` names the data set and split; ``metrics`` holds ``type``/``value``/``name``.
    """
    results = []
    for split, res in (metrics or {}).items():
        ms = [{"type": str(k), "value": _number(v), "name": f"{k} ({split})"}
              for k, v in res.items() if k not in ("split", "n") and _number(v) is not None]
        if not ms:
            continue
        for task in tasks or ["other"]:
            results.append({"task": {"type": _HUB_TASK.get(task, task), "name": task},
                            "dataset": {"name": dataset or "in-memory data", "type": dataset or "custom",
                                        "split": str(split)},
                            "metrics": ms})
    return [{"name": name, "results": results}] if results else []


def _front_matter(model_type: str, dataset: str | None, lic: str, index: list[dict] | None = None) -> list[str]:
    import yaml

    meta = {"license": lic.lower(), "library_name": "omicszoo", "tags": ["omicszoo", model_type, "multi-omics"]}
    if dataset:
        meta["datasets"] = [dataset]
    if index:
        meta["model-index"] = index
    return ["---", yaml.safe_dump(meta, sort_keys=False).rstrip(), "---", ""]


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
    title = extra.get("title") or est.model_type + " on " + (d.get("dataset") or "(in-memory data)")
    index = model_index(extra.get("name") or title, list(schema.get("tasks") or []), d.get("dataset"),
                        getattr(est, "metrics_", None) or {})
    lines = _front_matter(est.model_type, d.get("dataset"), lic, index)
    lines += [f"# {title}", ""]
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
