"""Input checks that turn silent NaN results into clear errors.

* :func:`check_batch_finite` - a non-finite value (NaN, inf) in a modality's
  measured rows: :class:`NonFiniteInputError` naming the modality, the feature
  and the sample (or row). Called by :class:`zoo.preprocess.Preprocessor` on
  the raw training batches (``Preprocessor.fit``) and on every preprocessed batch
  (training, validation and predict time). ``nan_policy="error"`` is the
  default; ``"zero"`` (an estimator's ``nan_policy`` attribute at fit time, a
  modality's ``"nan_policy"`` in ``schema.json`` at predict time) replaces them,
  with a warning: by 0 in the raw training data, by the training mean (0 after
  standardisation) in preprocessed inputs.
* :func:`check_survival_targets` - the training rows' survival target: infinite
  or negative times, no row with a usable time, or no event at all
  (all censored: the Cox loss has nothing to learn from) are errors.
"""
from __future__ import annotations

import logging
import warnings

import numpy as np
import torch

from omicsdata.errors import SchemaMismatchError

log = logging.getLogger(__name__)
NAN_POLICIES = ("error", "zero")


class NonFiniteInputError(SchemaMismatchError):
    """A NaN or inf in model inputs; names modality, feature and sample."""


def check_policy(policy: str) -> str:
    """``policy`` if it is a known ``nan_policy`` (else :class:`SchemaMismatchError`)."""
    if policy not in NAN_POLICIES:
        raise SchemaMismatchError(f"nan_policy={policy!r}: use one of {', '.join(NAN_POLICIES)}")
    return policy


def check_batch_finite(x: torch.Tensor, mask: torch.Tensor, index: torch.Tensor, modality: str,
                       features, sample_names=None, where: str = "input", policy: str = "error") -> torch.Tensor:
    """``x`` unchanged when its measured rows are finite; else raise (``policy="error"``) or zero them
    (``"zero"``, with a warning). ``index`` holds each row's position in the data (for the message)."""
    bad = ~torch.isfinite(x)
    if mask is not None:
        bad &= mask.view(-1, 1).to(torch.bool)
    if not bool(bad.any()):
        return x
    r, c = (int(v) for v in torch.nonzero(bad)[0].tolist())
    n_bad = int(bad.sum())
    row = int(index[r]) if index is not None else r
    sample = str(sample_names[row]) if sample_names is not None and row < len(sample_names) else f"row {row}"
    feat = str(features[c]) if features is not None and c < len(features) else f"column {c}"
    value = float(x[r, c])
    if policy == "zero":
        warnings.warn(f"{where}: {n_bad} non-finite value(s) in modality '{modality}' (first: feature '{feat}', "
                      f"sample '{sample}', {value}); replaced (nan_policy='zero')",
                      stacklevel=3)
        return torch.where(bad, torch.zeros((), dtype=x.dtype, device=x.device), x)
    raise NonFiniteInputError(
        f"{where}: modality '{modality}', feature '{feat}', sample '{sample}' is {value} "
        f"({n_bad} non-finite value(s) in this batch); impute them (e.g. a store built with imputing transforms) "
        "or drop those samples; or set the estimator's nan_policy = 'zero' before fit to replace them")


def check_survival_targets(obs, time_col: str, event_col: str, rows: np.ndarray) -> None:
    """Raise :class:`SchemaMismatchError` if the training rows' survival target cannot train a model."""
    t = obs[time_col].to_numpy(dtype=np.float64, na_value=np.nan)[rows]
    e = obs[event_col].to_numpy(dtype=np.float64, na_value=np.nan)[rows]
    names = np.asarray(obs.index)[rows]
    inf = np.isinf(t)
    if inf.any():
        i = int(np.flatnonzero(inf)[0])
        raise SchemaMismatchError(f"obs['{time_col}']: sample '{names[i]}' has time {t[i]} (times must be finite)")
    neg = np.isfinite(t) & (t < 0)
    if neg.any():
        i = int(np.flatnonzero(neg)[0])
        raise SchemaMismatchError(f"obs['{time_col}']: sample '{names[i]}' has a negative time {t[i]}")
    ok = np.isfinite(t) & np.isfinite(e)
    if not ok.any():
        raise SchemaMismatchError(f"obs['{time_col}'] / obs['{event_col}']: none of the {len(rows)} training "
                                  "samples has both a time and an event (all NaN)")
    half = np.isnan(t) & np.isfinite(e)
    if half.any():
        log.warning("obs['%s']: %d training sample(s) (first '%s') have an event but no time; left out of the "
                    "survival loss", time_col, int(half.sum()), names[int(np.flatnonzero(half)[0])])
    if not (e[ok] > 0).any():
        raise SchemaMismatchError(f"obs['{event_col}']: all {int(ok.sum())} training samples are censored "
                                  "(no event); a survival model cannot be trained. Check the event column "
                                  "or train without a survival target (time_col=None)")
