"""The estimator's checkpoint contract and persistence entry points (mixed into :class:`zoo.Estimator`).

The checkpoint layer (:mod:`zoo.checkpoint`) knows an estimator only through
``checkpoint_config()``, ``checkpoint_state()`` and ``restore_checkpoint()``.
"""
from __future__ import annotations

from omicsdata.errors import SchemaMismatchError
from omicsdata.jsonutil import jsonable as _jsonable

from .preprocess import Preprocessor


class PersistenceMixin:
    """``checkpoint_*`` / ``restore_checkpoint`` and ``save_pretrained`` / ``from_pretrained`` / ``push_to_hub``."""

    def checkpoint_config(self) -> dict:
        """The small JSON dict ``config.json`` holds beside the parameters (dimensions, heads)."""
        self._check_fitted()
        return {"input_dims": self.input_dims_, "n_classes": self.n_classes_, "survival": self.has_survival_}

    def checkpoint_state(self) -> tuple[dict, dict]:
        """``(schema, tensors)``: the JSON-able ``schema.json`` dict and the module's CPU tensors."""
        self._check_fitted()
        state = {k: v.detach().to("cpu").contiguous() for k, v in self.module_.state_dict().items()}
        return _jsonable(self.schema_), state

    def restore_checkpoint(self, schema: dict, tensors: dict) -> "PersistenceMixin":
        """Set ``schema_``, the preprocessing and the module from a checkpoint (strict load).

        Called on an estimator built as ``cls(**params)``; raises
        :class:`~omicsdata.errors.SchemaMismatchError` when they do not fit.
        """
        name = type(self).__name__
        if not isinstance(schema, dict) or not isinstance(schema.get("modalities"), dict) \
                or not isinstance(schema.get("tasks"), dict):
            raise SchemaMismatchError(f"{name}: schema needs the fields 'modalities' and 'tasks' (dicts)")
        self.schema_ = schema
        try:
            self.preprocessor_ = Preprocessor.from_json(schema["modalities"])
        except (KeyError, TypeError, AttributeError, ValueError) as e:
            raise SchemaMismatchError(f"{name}: schema field 'modalities' is malformed ({e})") from None
        module = self.build_module()
        try:
            module.load_state_dict(tensors, strict=True)
        except RuntimeError as e:
            raise SchemaMismatchError(f"{name}: tensors do not fit the module built from the config: "
                                      f"{str(e).splitlines()[0]}") from None
        self.module_ = module.to(self.device_).eval()
        self.metrics_ = {}
        return self

    def save_pretrained(self, path, **card) -> str:
        """Write the checkpoint folder (config.json, model.safetensors, schema.json, README.md)."""
        from .checkpoint import save

        return save(self, path, **card)

    @classmethod
    def from_pretrained(cls, name_or_path, revision: str | None = None, **kw):
        """Load a checkpoint folder, a Hub repo id (``revision`` pins it) or a catalog model name."""
        from .pretrained import load_any

        # a base class (no registered model_type) accepts any model; a model class only its own kind
        expected = cls if getattr(cls, "model_type", None) else None
        return load_any(name_or_path, revision=revision, expected_cls=expected, **kw)

    def push_to_hub(self, repo_id: str, revision: str | None = None, private: bool = False,
                    commit_message: str = "Upload zoo checkpoint", **card) -> str:
        """Save the checkpoint and upload it to the Hub repo ``repo_id``; returns the commit id."""
        from .pretrained import push_to_hub

        return push_to_hub(self, repo_id, revision=revision, private=private, commit_message=commit_message, **card)
