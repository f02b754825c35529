"""The training loop shared by every estimator: epochs, optimiser, early stopping, progress, history.

:class:`Trainer` knows nothing about tasks or data formats: it calls the
estimator's hooks (``preprocessor_``, ``forward``, ``loss``, ``penalty``,
``configure_optimizers``, ``validation_score``) and its ``_collect`` for the
validation pass, and keeps the best epoch's weights.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field


@dataclass
class TrainResult:
    """What one :meth:`Trainer.run` produced."""

    history: list = field(default_factory=list)
    best_score: float | None = None

    @property
    def n_epochs(self) -> int:
        """Epochs run (early stopping may end before ``max_epochs``)."""
        return len(self.history)


class Trainer:
    """Epoch loop with early stopping on a validation score (higher is better)."""

    def __init__(self, max_epochs: int, patience: int, progress: bool = True, desc: str = "fit"):
        self.max_epochs, self.patience, self.progress, self.desc = int(max_epochs), patience, progress, desc

    def _bar(self):
        if not self.progress:
            return None
        from omicsdata.progress import bar as tqdm

        return tqdm(total=self.max_epochs, desc=self.desc, unit="epoch", leave=False)

    def train_epoch(self, est, module, source, targets_dev, opt, sched) -> float:
        """One pass over ``source``; returns the mean training loss."""
        module.train()
        tot, nb = 0.0, 0
        for raw in source:
            inputs = est.preprocessor_(raw)
            targets = {k: v.index_select(0, inputs["index"]) for k, v in targets_dev.items()}
            out = est.forward(module, inputs)
            loss = est.loss(out, targets) + est.penalty(module)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss.detach())
            nb += 1
        return tot / max(nb, 1)

    def run(self, est, module, source, targets_dev: dict, val_source=None, val_targets: dict | None = None
            ) -> TrainResult:
        """Train ``module`` in place; with ``val_source``, stop after ``patience`` epochs without
        improvement and restore the best weights."""
        opt, sched = est.configure_optimizers(module, max(1, len(source)) * self.max_epochs)
        best, best_state, bad = -math.inf, None, 0
        result = TrainResult()
        bar = self._bar()
        try:
            for epoch in range(self.max_epochs):
                source.set_epoch(epoch)
                rec = {"epoch": epoch, "train_loss": self.train_epoch(est, module, source, targets_dev, opt, sched)}
                if val_source is not None:
                    outs = est._collect(module, val_source, None)
                    score = est.validation_score(outs, {k: v[outs["index"]] for k, v in val_targets.items()})
                    rec["val_score"] = score
                    if score > best + 1e-6:
                        best, bad = score, 0
                        best_state = copy.deepcopy(module.state_dict())
                        rec["best"] = True
                    else:
                        bad += 1
                result.history.append(rec)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix({k: round(v, 4) for k, v in rec.items() if isinstance(v, float)})
                if val_source is not None and bad >= self.patience:
                    break
        finally:
            if bar is not None:
                bar.close()
        if best_state is not None:
            module.load_state_dict(best_state)
            result.best_score = best
        return result
