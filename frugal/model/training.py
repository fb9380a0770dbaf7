"""Fine-tune the pretrained encoder + a classification head on labeled text.

Why a step floor: a few hundred labels at batch 32 is a handful of optimizer steps per epoch,
and the fine-tuned model then stays near chance. Training therefore runs at least
`min_steps` steps (more epochs on small sets), with linear warm-up and decay, and keeps the
checkpoint with the best dev accuracy (early stopping after `early_stopping_patience`
evaluations without improvement).
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from frugal.config import TrainConfig
from frugal.errors import DataError
from frugal.model.loop import Batcher, Optimization, train_steps
from frugal.model.modeling import Classifier, new_classifier, predict_proba


@dataclass
class TrainResult:
    classifier: Classifier
    best_dev_accuracy: float
    best_step: int
    steps: int
    planned_steps: int
    train_seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    # classes in the head that no training example had (see `_label_set`)
    unseen_labels: list[str] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def planned_steps(n_examples: int, cfg: TrainConfig) -> int:
    """Optimizer steps: `epochs` passes, raised to `min_steps`, capped by `max_steps`."""
    steps_per_epoch = math.ceil(n_examples / cfg.batch_size)
    steps = max(cfg.epochs * steps_per_epoch, cfg.min_steps)
    return min(steps, cfg.max_steps) if cfg.max_steps else steps


def _label_set(train: pd.DataFrame, dev: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Classes of the head (training ∪ dev labels) and those with no training example.

    A small or actively sampled labeled set can miss a rare class; the head still gets an
    output for it (the dev set shows it exists), it just never wins until labels arrive.
    """
    if train.empty:
        raise DataError("training set is empty: label some pool examples first")
    seen = set(train["label"].astype(str))
    labels = sorted(seen | set(dev["label"].astype(str)))
    return labels, sorted(set(labels) - seen)


@dataclass
class _Best:
    """The best dev checkpoint so far, and the evaluations since it (early stopping)."""

    accuracy: float = -1.0
    step: int = 0
    state: dict | None = None
    stale: int = 0


def fine_tune(
    train: pd.DataFrame,
    dev: pd.DataFrame,
    cfg: TrainConfig,
    progress: Callable[[int, int, dict[str, float]], None] | None = None,
) -> TrainResult:
    """Fine-tune on `train` (columns text, label), select the checkpoint on `dev`.

    `progress(step, total, info)` is called after every optimizer step (for a progress bar);
    `info` holds the smoothed training loss, and the dev accuracy on evaluation steps.
    """
    labels, unseen = _label_set(train, dev)
    seed_everything(cfg.seed)
    torch.set_num_threads(cfg.threads)
    clf = new_classifier(labels, cfg.max_length, train["text"].tolist())
    model = clf.model
    label_ids = {label: i for i, label in enumerate(labels)}
    batcher = Batcher(clf, train["text"].tolist())
    targets = torch.tensor([label_ids[str(y)] for y in train["label"]])
    dev_texts, dev_y = dev["text"].tolist(), dev["label"].astype(str).map(label_ids).to_numpy()

    total = planned_steps(len(train), cfg)
    # About ten dev evaluations per run; patience counts only in the second half of the
    # schedule, once the dev score has stopped jumping around after warm-up.
    eval_every = cfg.eval_every_steps or max(1, total // 10)
    best = _Best()
    history: list[dict[str, float]] = []
    running_loss = 0.0

    def loss_of(indices: list[int], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(model(**batch).logits, targets[indices])

    def after_step(step: int, loss: float) -> bool:
        nonlocal running_loss
        running_loss = 0.9 * running_loss + 0.1 * loss if step > 1 else loss
        info = {"loss": running_loss}
        if step % eval_every == 0 or step == total:
            dev_acc = float((predict_proba(clf, dev_texts).argmax(1) == dev_y).mean())
            history.append({"step": step, "train_loss": running_loss, "dev_accuracy": dev_acc})
            info["dev_accuracy"] = dev_acc
            if dev_acc > best.accuracy:
                best.accuracy, best.step, best.stale = dev_acc, step, 0
                best.state = copy.deepcopy(model.state_dict())
            elif step >= total // 2:
                best.stale += 1
        if progress:
            progress(step, total, info)
        return best.stale >= cfg.early_stopping_patience

    how = Optimization(cfg.learning_rate, cfg.weight_decay, cfg.warmup_fraction, cfg.batch_size)
    generator = torch.Generator().manual_seed(cfg.seed)
    started = time.perf_counter()
    model.train()
    step = train_steps(model, batcher, loss_of, total, how, generator, after_step)
    seconds = time.perf_counter() - started
    model.load_state_dict(best.state)
    model.eval()
    return TrainResult(clf, best.accuracy, best.step, step, total, seconds, history, unseen)


CURVE_ORDERS = ("rounds", "random")


@dataclass(frozen=True)
class Trained:
    """A model already fine-tuned by the same recipe on the whole labeled set with `seed`
    (the train stage's): the curve's point at 1.0 for that seed, not fine-tuned again."""

    classifier: Classifier
    seed: int
    steps: int
    train_seconds: float


def classifier_accuracy(clf: Classifier, frame: pd.DataFrame) -> float:
    """Share of `frame`'s rows (columns text, label) whose likeliest class is the label."""
    probs = predict_proba(clf, frame["text"].tolist())
    predicted = np.asarray(clf.labels)[probs.argmax(axis=1)]
    return float((predicted == frame["label"].astype(str).to_numpy()).mean())


def curve_subset(labeled: pd.DataFrame, fraction: float, order: str, seed: int) -> pd.DataFrame:
    """The learning curve's training set at `fraction` of `labeled` (in buying order).

    ``rounds``: the first share, i.e. the first annotation rounds. ``random``: a seeded random
    share, nested across fractions for one seed (a prefix of one permutation), kept in buying
    order, so fraction 1.0 is the whole set under either order.
    """
    n_labels = max(1, round(fraction * len(labeled)))
    if order == "rounds":
        return labeled.iloc[:n_labels]
    if order != "random":
        raise ValueError(f"unknown learning-curve order {order!r}; choose from {CURVE_ORDERS}")
    chosen = np.random.default_rng(seed).permutation(len(labeled))[:n_labels]
    return labeled.iloc[np.sort(chosen)]


def learning_curve_points(
    labeled: pd.DataFrame,
    dev: pd.DataFrame,
    evaluation: pd.DataFrame,
    fractions: list[float],
    seeds: list[int],
    cfg: TrainConfig,
    progress: Callable[[dict[str, float]], None] | None = None,
    order: str = "rounds",
    trained: Trained | None = None,
) -> pd.DataFrame:
    """Accuracy on `evaluation` of the model fine-tuned (recipe `cfg`) on a share of
    `labeled` (see `curve_subset` for `order`), per fraction × seed. The point at 1.0 for
    `trained.seed` is `trained`'s model (the whole set under either order: the same run).

    Columns: fraction, seed, n_labels, score, steps, train_seconds, reused (1: `trained`).
    `progress(row)` after each.
    """
    rows = []
    for fraction in sorted(set(fractions)):
        for seed in seeds:
            subset = curve_subset(labeled, fraction, order, seed)
            reused = fraction == 1.0 and trained is not None and trained.seed == seed
            if reused:
                clf, steps, seconds = trained.classifier, trained.steps, trained.train_seconds
            else:
                result = fine_tune(subset, dev, cfg.model_copy(update={"seed": seed}))
                clf, steps, seconds = result.classifier, result.steps, result.train_seconds
            row = {
                "fraction": fraction,
                "seed": seed,
                "n_labels": len(subset),
                "score": classifier_accuracy(clf, evaluation),
                "steps": steps,
                "train_seconds": round(seconds, 1),
                "reused": int(reused),
            }
            rows.append(row)
            if progress:
                progress(row)
    return pd.DataFrame(rows)
