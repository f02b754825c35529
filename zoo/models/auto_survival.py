"""``auto-survival``: pick (or stack) the zoo's survival models by inner cross-validation.

>>> m = zoo.create_model("auto-survival", random_state=0).fit(mdata, split="train")
>>> m.leaderboard_          # candidate, inner-CV C-index mean/std, fit seconds, chosen, weight
>>> m.score(mdata, split="test"); m.predict_survival_function(mdata, times)

How it works, on the ``split`` rows only (no other row is read for any statistic):

1. the training rows with a survival target are cut into ``cv`` folds
   (stratified by event, seeded by ``random_state``);
2. every candidate (``candidates``: zoo model names, default every registered
   survival model but this one) is fitted on ``cv - 1`` folds and predicts the
   held-out fold (neural candidates carve their early-stopping rows out of the
   ``cv - 1`` folds). Its inner-CV C-index is the mean (std) over folds. Each
   fold's out-of-fold risks are standardised with the mean/sd of that fit's
   risks on its own training rows;
3. **ensemble weights**: non-negative coefficients ``b`` of a Cox model on the
   candidates' standardised out-of-fold risks (partial likelihood stratified
   by fold, small ridge, L-BFGS-B with ``b >= 0``); weights ``w = b / sum(b)``.
   The ensemble's own inner-CV C-index is measured honestly: fold ``f``'s risks
   are combined with weights fitted on the other folds only;
4. ``ensemble="auto"`` keeps the ensemble when its inner-CV C-index is at
   least the best candidate's, else the best candidate; ``True``/``False``
   force one. The chosen model(s) are refit on all ``split`` rows. The
   ensemble's risk is ``sum_k b_k z_k`` (a log-hazard scale) with a Breslow
   baseline from the training rows; ``return_std=True`` gives the members'
   weighted spread on that scale.

``time_budget_s`` bounds step 2: once it is spent, candidates not yet run in
every fold are left out (the leaderboard says so; the first candidate always
runs). A checkpoint holds every kept member (their tensors prefixed
``members.<i>.`` in ``model.safetensors``, their parameters and schemas in
``schema.json``): no pickle; loading rebuilds each member's class from the registry.
"""
from __future__ import annotations

import inspect
import time
import warnings

import numpy as np
import pandas as pd

from omicsdata.errors import SchemaMismatchError

from .. import data as zdata
from ..estimator import Estimator, NotFittedError
from ..registry import get_model_class, list_models, register_model
from ..tasks import get_task
from ..tasks.survival import survival_function
from . import _stacking as S
from ._stacking import LARGE_COHORT, inner_fold_count, union_modalities  # noqa: F401 - re-exported

NAME = "auto-survival"
DEFAULT_ORDER = ("coxnet", "gbsa", "senmo", "rsf", "deepsurv")  # cheap first: a time budget cuts the slow ones
#: registered survival models left out of the default candidates (the authors' configuration is for their weights)
NOT_BY_DEFAULT = ("senmo-authors",)


def survival_candidates() -> list[str]:
    """Every registered survival model but ``auto-survival``, cheap ones first."""
    try:
        names = list_models(task="survival")
    except TypeError:  # a registry without task filtering: read the classes' task lists
        names = [n for n in list_models() if "survival" in getattr(get_model_class(n), "task_names", ())]
    names = [n for n in names if n != NAME and n not in NOT_BY_DEFAULT]
    return sorted(names, key=lambda n: (DEFAULT_ORDER.index(n) if n in DEFAULT_ORDER else len(DEFAULT_ORDER), n))


def _accepts(cls, name: str) -> bool:
    return name in inspect.signature(cls.__init__).parameters


@register_model(NAME)
class AutoSurvival(Estimator):
    """Inner-CV model selection and non-negative stacking over the zoo's survival models.

    ``candidates``: list of model names, or ``{label: name}`` / ``{label: [name, params]}``
    (JSON-able, as they go to ``config.json``); None: :func:`survival_candidates`.
    ``cv``: inner folds, or ``"auto"`` (the default): 3 folds below :data:`LARGE_COHORT` training rows
    with a survival target, 2 from there (a fold of 1,000+ patients ranks candidates as well as more
    folds would, and each extra fold costs a fit of every candidate). ``ensemble``: ``"auto"``, True or False (see the module
    docstring). ``time_budget_s``: seconds for the inner CV (None: no limit).
    ``min_weight``: members below this ensemble weight are dropped before the refit.
    ``modalities``, ``time_col``, ``event_col``, ``device``, ``random_state``,
    ``progress`` are passed to every candidate that takes them.
    """

    task_names = ("survival",)

    def __init__(self, candidates=None, cv="auto", ensemble="auto", time_budget_s=None, min_weight=0.01,
                 modalities=None, time_col="os_time", event_col="os_event", device="auto", min_overlap=0.5,
                 random_state=0, progress=True):
        super().__init__(modalities=modalities, time_col=time_col, event_col=event_col, label_col=None,
                         device=device, min_overlap=min_overlap, random_state=random_state, progress=progress)
        self.candidates = candidates
        self.cv = cv
        self.ensemble = ensemble
        self.time_budget_s = time_budget_s
        self.min_weight = min_weight

    # ------------------------------------------------------------------ candidates
    def _candidate_specs(self) -> list[tuple[str, str, dict]]:
        """``[(label, model name, params)]`` from ``candidates``."""
        c = self.candidates
        if c is None:
            c = survival_candidates()
        if isinstance(c, str):
            c = [c]
        items = list(c.items()) if isinstance(c, dict) else [(n, n) for n in c]
        specs = []
        for label, v in items:
            name, params = (v, {}) if isinstance(v, str) else (v[0], dict(v[1]) if len(v) > 1 else {})
            if name == NAME:
                raise SchemaMismatchError(f"{NAME}: a candidate cannot be '{NAME}' itself")
            specs.append((str(label), str(name), params))
        if not specs:
            raise SchemaMismatchError(f"{NAME}: no candidate survival model (candidates={self.candidates!r})")
        return specs

    def _make(self, name: str, params: dict):
        cls = get_model_class(name)
        shared = {"modalities": self.modalities, "time_col": self.time_col, "event_col": self.event_col,
                  "device": self.device, "random_state": self.random_state, "progress": False, "label_col": None,
                  "min_overlap": self.min_overlap}
        kw = {k: v for k, v in shared.items() if _accepts(cls, k)}
        return cls(**{**kw, **params})

    # ------------------------------------------------------------------ fit
    def fit(self, data, y=None, split="train", val_split="val"):
        """Inner CV of every candidate on the ``split`` rows, leaderboard, then refit the chosen model(s).

        ``val_split`` is handed to the final refit (neural members stop early on
        it when the data has it); the inner CV never reads rows outside ``split``.
        """
        t_start = time.perf_counter()
        mdata = zdata.resolve(data)
        tasks = self._resolve_tasks(mdata)
        plan_rows = zdata.select_rows(mdata, split)
        tasks = {n: get_task(n).fit(spec, mdata.obs, plan_rows) for n, spec in tasks.items()}
        self.schema_ = {"modalities": {}, "tasks": tasks}
        tg = self._targets(mdata)
        rows = plan_rows[tg["surv_ok"][plan_rows]]
        k = inner_fold_count(self.cv, rows.size)
        if k < 2 or rows.size < 2 * k:
            raise SchemaMismatchError(f"{NAME}: cv={self.cv} needs at least 2 folds and {2 * k} training rows "
                                      f"with a survival target (have {rows.size})")
        fold = S.inner_folds(tg["event"][rows], k, int(self.random_state or 0))
        specs = self._candidate_specs()
        oof, board = self._inner_cv(mdata, rows, fold, specs, tg, t_start)
        self._choose(oof, board, rows, fold, tg)
        self._refit(mdata, split, val_split, specs, tg, plan_rows)
        self.schema_["data"] = self._data_info(mdata, split, len(plan_rows))
        self.schema_["data"]["fit_seconds"] = round(time.perf_counter() - t_start, 2)
        self.metrics_ = {}
        return self

    def _bar(self, total: int):
        if not self.progress:
            return None
        from omicsdata.progress import bar as tqdm

        return tqdm(total=total, desc=f"fit {NAME}", unit="fit", leave=False)

    def _inner_cv(self, mdata, rows, fold, specs, tg, t_start):
        k = int(fold.max()) + 1
        views = [S.fold_view(mdata, rows, fold, f) for f in range(k)]
        oof = {}
        board = []
        bar = self._bar(len(specs) * k)
        try:
            for ci, (label, name, params) in enumerate(specs):
                z = np.full(rows.size, np.nan)
                cs, secs, err = [], [], None
                for f in range(k):
                    if self.time_budget_s is not None and ci > 0 and time.perf_counter() - t_start > self.time_budget_s:
                        err = f"left out: time budget of {self.time_budget_s}s spent"
                        break
                    held = fold == f
                    t0 = time.perf_counter()
                    try:
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            est = self._make(name, params).fit(views[f], split=S.INNER_TRAIN)
                            secs.append(time.perf_counter() - t0)
                            stats = S.risk_stats(est.predict_risk(views[f], split=S.INNER_TRAIN))
                            r = est.predict_risk(views[f], split=S.INNER_HELD)
                    except Exception as e:  # a candidate that fails is reported, never fatal
                        err = f"failed: {type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"
                        break
                    finally:
                        if bar is not None:
                            bar.update(1)
                    z[held] = S.standardise(r, stats)
                    cs.append(self._cindex(tg, rows[held], r))
                ok = err is None and len(cs) == k
                if ok:
                    oof[label] = z
                board.append({"candidate": label, "model": name, "cv_c_index_mean": float(np.mean(cs)) if ok else np.nan,
                              "cv_c_index_std": float(np.std(cs, ddof=1)) if ok else np.nan,
                              "fit_seconds": float(np.mean(secs)) if secs else np.nan,
                              "folds": len(cs), "note": err or ""})
        finally:
            if bar is not None:
                bar.close()
        if not oof:
            notes = "; ".join(f"{b['candidate']}: {b['note']}" for b in board)
            raise SchemaMismatchError(f"{NAME}: no candidate completed the inner CV ({notes})")
        return oof, board

    @staticmethod
    def _cindex(tg, rows, risk) -> float:
        from ..metrics import concordance_index_censored

        return float(concordance_index_censored(tg["event"][rows], tg["time"][rows], risk))

    def _choose(self, oof: dict, board: list, rows, fold, tg) -> None:
        labels = list(oof)
        Z = np.column_stack([oof[c] for c in labels])
        t, e = tg["time"][rows], tg["event"][rows]
        b = S.cox_stack(Z, t, e, fold)
        k = int(fold.max()) + 1
        ens_cs = []
        for f in range(k):  # honest: fold f combined with weights fitted on the other folds
            tr = fold != f
            bf = S.cox_stack(Z[tr], t[tr], e[tr], fold[tr])
            ens_cs.append(self._cindex(tg, rows[fold == f], Z[fold == f] @ (bf if bf.sum() > 0 else np.ones(len(bf)))))
        best = max(labels, key=lambda c: next(r["cv_c_index_mean"] for r in board if r["candidate"] == c))
        best_c = next(r["cv_c_index_mean"] for r in board if r["candidate"] == best)
        use_ens = {"auto": len(labels) > 1 and b.sum() > 0 and np.mean(ens_cs) >= best_c,
                   True: b.sum() > 0, False: False}.get(self.ensemble)
        if use_ens is None:
            raise SchemaMismatchError(f"{NAME}: ensemble must be 'auto', True or False, got {self.ensemble!r}")
        w = b / b.sum() if b.sum() > 0 else np.zeros_like(b)
        if use_ens:
            keep = w >= float(self.min_weight)
            b = np.where(keep, b, 0.0)
            w = b / b.sum()
        coef = {c: float(b[i]) for i, c in enumerate(labels)}
        weight = {c: (float(w[i]) if use_ens else float(c == best)) for i, c in enumerate(labels)}
        for r in board:
            r["weight"] = weight.get(r["candidate"], 0.0)
            r["chosen"] = r["weight"] > 0
        board.append({"candidate": "ensemble", "model": NAME, "cv_c_index_mean": float(np.mean(ens_cs)),
                      "cv_c_index_std": float(np.std(ens_cs, ddof=1)), "fit_seconds": np.nan, "folds": k,
                      "note": "weights fit on the other folds' out-of-fold risks", "weight": float(use_ens),
                      "chosen": bool(use_ens)})
        self.leaderboard_ = pd.DataFrame(board, columns=["candidate", "model", "cv_c_index_mean", "cv_c_index_std",
                                                         "fit_seconds", "chosen", "weight", "folds", "note"])
        self.schema_["auto_survival"] = {
            "mode": "ensemble" if use_ens else "best", "best": best, "cv": k,
            "coef": {c: v for c, v in coef.items() if use_ens and v > 0},
            "leaderboard": self.leaderboard_.replace({np.nan: None}).to_dict(orient="records")}

    def _refit(self, mdata, split, val_split, specs, tg, plan_rows) -> None:
        info = self.schema_["auto_survival"]
        by_label = {s[0]: s for s in specs}
        labels = list(info["coef"]) if info["mode"] == "ensemble" else [info["best"]]
        bar = self._bar(len(labels))
        members, meta = [], []
        try:
            for label in labels:
                _, name, params = by_label[label]
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    est = self._make(name, params).fit(mdata, split=split, val_split=val_split)
                    r_train = est.predict_risk(mdata, split=split)
                members.append(est)
                meta.append({"label": label, "stats": list(S.risk_stats(r_train)), "coef": info["coef"].get(label, 1.0)})
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        self.members_, self.schema_["members"] = members, meta
        self.schema_["modalities"] = union_modalities(members)
        if info["mode"] == "ensemble":
            ok = plan_rows[tg["surv_ok"][plan_rows]]
            risk = self._combine(mdata, split)[0]
            pos = np.searchsorted(plan_rows, ok)
            targets = {kk: v[ok] for kk, v in tg.items()}
            self.schema_["survival"] = get_task("survival").summarize(self, {"risk": risk[pos]}, targets)

    def leaderboard_text(self) -> str:
        """The leaderboard as a plain-text table (what the demo prints)."""
        self._check_fitted()
        info = self.schema_["auto_survival"]
        chosen = "weighted ensemble" if info["mode"] == "ensemble" else info["best"]
        return S.format_leaderboard(self.leaderboard_, f"chosen: {chosen} (inner {info['cv']}-fold CV on the training rows)")

    # ------------------------------------------------------------------ predict
    def _check_fitted(self):
        if not hasattr(self, "members_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit(...) or from_pretrained(...)")

    @property
    def mode_(self) -> str:
        """``"ensemble"`` or ``"best"`` (one refit candidate)."""
        self._check_fitted()
        return self.schema_["auto_survival"]["mode"]

    @property
    def chosen_(self):
        """The refit best candidate (``mode_ == "best"``) or the list of ensemble members."""
        self._check_fitted()
        return self.members_[0] if self.mode_ == "best" else list(self.members_)

    def _combine(self, data, split):
        """Ensemble log-risk ``sum_k b_k z_k`` and the members' weighted spread, over the ``split`` rows."""
        zs, bs = [], []
        for est, m in zip(self.members_, self.schema_["members"]):
            zs.append(S.standardise(est.predict_risk(data, split), tuple(m["stats"])))
            bs.append(m["coef"])
        Z, b = np.column_stack(zs), np.asarray(bs)
        risk = Z @ b
        if len(self.members_) == 1:  # one member left: its own uncertainty on the ensemble's scale
            return risk, self._single_std(data, split, b[0] / max(self.schema_["members"][0]["stats"][1], 1e-12))
        w = b / b.sum()
        spread = b.sum() * np.sqrt(np.maximum(((Z - (Z @ w)[:, None]) ** 2) @ w, 0.0))
        return risk, spread

    def _single_std(self, data, split, scale: float) -> np.ndarray:
        try:
            return scale * np.asarray(self.members_[0].predict_risk(data, split, return_std=True)[1])
        except (NotImplementedError, TypeError, SchemaMismatchError):
            return np.zeros(zdata.select_rows(zdata.resolve(data), split).size)

    def predict_outputs(self, data, split=None, mc_samples: int = 0, required=None) -> dict:
        """``index``, ``obs_names``, ``risk`` and ``risk_std`` for the ``split`` rows, in row order."""
        self._check_fitted()
        mdata = zdata.resolve(data)
        rows = zdata.select_rows(mdata, split)
        res = {"index": rows, "obs_names": np.asarray(mdata.obs_names[rows])}
        if self.mode_ == "best":
            if mc_samples:
                res["risk"], res["risk_std"] = self.members_[0].predict_risk(mdata, split, return_std=True)
            else:
                res["risk"] = self.members_[0].predict_risk(mdata, split)
                res["risk_std"] = np.zeros_like(res["risk"])
        else:
            res["risk"], res["risk_std"] = self._combine(mdata, split)
        return res

    def predict_risk(self, data, split=None, return_std: bool = False, mc_samples: int = 30):
        """Risk (log-hazard scale; higher = shorter survival). ``return_std``: the ensemble members'
        weighted spread, or the chosen candidate's own uncertainty."""
        out = self.predict_outputs(data, split, mc_samples=mc_samples if return_std else 0)
        return (out["risk"], out["risk_std"]) if return_std else out["risk"]

    def predict(self, data, split=None, return_std: bool = False, mc_samples: int = 30):
        """Same as :meth:`predict_risk`."""
        return self.predict_risk(data, split, return_std, mc_samples)

    def predict_survival_function(self, data, times, split=None) -> np.ndarray:
        """``S(t | x)``: the chosen candidate's, or the ensemble's Breslow baseline on its combined risk."""
        self._check_fitted()
        if self.mode_ == "best":
            return self.members_[0].predict_survival_function(data, times, split=split)
        return survival_function(self.schema_["survival"], self.predict_risk(data, split), times)

    def evaluate(self, data, split="test") -> dict:
        """``c_index``, ``uno_c``, ``ibs`` on the ``split`` rows (the chosen candidate's own when one was chosen)."""
        self._check_fitted()
        if self.mode_ == "best":
            res = dict(self.members_[0].evaluate(data, split))
        else:
            mdata = zdata.resolve(data)
            out = self.predict_outputs(mdata, split)
            tg = {k: v[out["index"]] for k, v in self._targets(mdata).items()}
            res = {"split": split, "n": int(len(out["index"]))}
            res.update(get_task("survival").metrics(self, out, tg))
        if not hasattr(self, "metrics_"):
            self.metrics_ = {}
        self.metrics_[str(split)] = res
        return res

    def explain(self, *a, **kw):  # pragma: no cover - documented refusal
        """Not available for the meta-model: explain ``chosen_`` (or each member) instead."""
        raise SchemaMismatchError(f"{NAME}: explain the chosen model instead (model.chosen_)")

    # ------------------------------------------------------------------ checkpoint
    def save_pretrained(self, path, **card) -> str:
        """Write the checkpoint folder; the model card carries the leaderboard."""
        if "description" not in card:
            card["description"] = "Inner-CV leaderboard (training rows only):\n\n```\n" + self.leaderboard_text() + "\n```"
        return super().save_pretrained(path, **card)

    def checkpoint_config(self) -> dict:
        self._check_fitted()
        return {"survival": True, "mode": self.mode_,
                "members": [{"label": m["label"], "model_type": e.model_type}
                            for e, m in zip(self.members_, self.schema_["members"])]}

    def checkpoint_state(self) -> tuple[dict, dict]:
        """Every member's schema and parameters in ``schema.json``, its tensors as ``members.<i>.<key>``."""
        self._check_fitted()
        meta, tensors = S.pack_members(self.members_, self.schema_["members"])
        return S.jsonable(dict(self.schema_, members=meta)), tensors

    def restore_checkpoint(self, schema: dict, tensors: dict) -> "AutoSurvival":
        """Rebuild every member from the registry (by ``model_type``) and its tensors; strict."""
        if not isinstance(schema, dict) or "auto_survival" not in schema:
            raise SchemaMismatchError(f"{NAME}: schema needs the field 'auto_survival'")
        self.members_ = S.unpack_members(schema.get("members"), tensors, self.device, NAME)
        self.schema_ = dict(schema, members=[{k: m[k] for k in ("label", "stats", "coef")} for m in schema["members"]])
        self.leaderboard_ = pd.DataFrame(schema["auto_survival"].get("leaderboard", []))
        self.metrics_ = {}
        return self
