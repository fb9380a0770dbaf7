"""Continual updates when new domains arrive, without retraining on everything.

CCFI (Hua et al., arXiv 2201.01420), and the baselines it is measured against:

* **Exemplar memory by Fisher information.** After a step, each class's examples are scored by
  the trace of their Fisher information under the model just trained, and the top-scoring
  ones, `memory_fraction` of the class, are kept. The trace is taken over the classification
  head, where it has a closed form: with pooled features h and predicted distribution p,
  E_y‖∇ log p(y|x)‖² = (1 − ‖p‖²)(‖h‖² + 1). It is largest for examples near the decision
  boundary, needs no label, and costs one batched forward pass. Both Fisher quantities come
  from `frugal.model.fisher`.
* **Dynamic weight consolidation.** The update trains on new data + memory with an EWC penalty
  Ω = Σ F_i (θ_i − θ*_i)² (diagonal Fisher of the old model on the memory, over the encoder's
  weights, anchored at the old weights). Its weight is set anew at every epoch from the ratio
  of the two losses over the epoch before, λ = mean cross-entropy / mean Ω, so that they pull
  equally hard with no λ to tune. The first epoch starts at the anchor (Ω = 0): it runs
  unconsolidated, learning the new classes, and sets the first λ.

Baselines: `finetune` (new data only), `random_replay` (random exemplars, same budget),
`ewc` (new data only, fixed λ), `full_retrain` (all data seen so far, from the pretrained
encoder: the upper bound); and `fisher_replay`, CCFI without the consolidation penalty (an
ablation: which half helps). Step 0 (the initial domains) is trained once, the same way as
`full_retrain`, and shared by every method.

Methods aimed at what CCFI misses (issue 19), each adding one part, so their differences are
an ablation: `mixed_replay` keeps a memory that covers each class, not only its boundary
(herding + Fisher: `frugal.continual.exemplars`); `mixed_distill` also distils the old model's logits
on every batch (LwF / iCaRL; weighted as BiC by default, from the share of old classes);
`mixed_distill_head` also freezes the old classes' rows of the head, where most forgetting of
a pretrained encoder's classifier happens (Zheng et al. 2023); and `balanced_replay` trains
random replay with balanced softmax, against the bias toward whichever side, new data or
memory, is larger (a large class arriving late outweighs every old class's memory).

`stats_head` (issue 30) stores no text at all. After step 0 the encoder stays as it is; what
is kept of the data seen is `ClassStats`: per class the count and the sum of the features the
head reads, and Σ x xᵀ over all of them. An update adds the new classes' statistics (one
forward pass over the new data) and solves the head in closed form, LDA with a shrunk shared
covariance (as first-session adaptation, Panos et al. ICCV 2023). The old classes' statistics
never change, so nothing of theirs is overwritten; the shrinkage is chosen on dev by a rule
(`SHRINKAGE_RULE`). The head is one linear layer: it is written into the served graph as any
head. Every method is a `Recipe`.

Pure: data frames and models in, models and numbers out; no Prefect, MLflow or files.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch

from frugal.config import CONTINUAL_METHODS, ContinualConfig
from frugal.continual.exemplars import MemoryKind, keep_exemplars
from frugal.data.domains import check_memory, check_update
from frugal.errors import DataError
from frugal.model.fisher import fisher_diagonal, head_inputs
from frugal.model.loop import Batcher, Optimization, train_steps
from frugal.model.modeling import Classifier, new_classifier, predict_proba, token_batches
from frugal.model.quantize import plannable_tensors
from frugal.model.runtime import in_input_order, length_order
from frugal.model.training import seed_everything


@dataclass(frozen=True)
class Recipe:
    """How a method updates a model when a domain arrives."""

    memory: MemoryKind = (
        "none"  # old exemplars kept per class and replayed (`frugal.continual.exemplars`)
    )
    penalty: Literal["none", "ewc", "dwc"] = "none"  # EWC: fixed λ; dwc: CCFI's dynamic λ
    distill: bool = False  # match the old model's logits on every batch (continual.distill_weight)
    balanced: bool = False  # balanced softmax: the update's class shares do not bias decisions
    protect_head: bool = False  # the old classes' rows of the head are not trained
    retrain: bool = False  # from the pretrained encoder on all data seen (the upper bound)
    head: Literal["trained", "lda"] = "trained"  # lda: fixed encoder, head from `ClassStats`
    adds: tuple[str, str] | None = None  # (the method it extends, the one part it adds)

    @property
    def reads_old_data(self) -> bool:
        """Whether an update reads the old data itself (not a bounded memory of it)."""
        return self.retrain or self.penalty == "ewc"

    @property
    def stores_text(self) -> bool:
        """Whether an update needs old training texts: kept exemplars, or the old data."""
        return self.memory != "none" or self.reads_old_data


RECIPES: dict[str, Recipe] = {
    "finetune": Recipe(),
    "ewc": Recipe(penalty="ewc"),
    "random_replay": Recipe(memory="random"),
    "balanced_replay": Recipe(
        memory="random", balanced=True, adds=("random_replay", "balanced softmax")
    ),
    "fisher_replay": Recipe(memory="fisher", adds=("random_replay", "Fisher-chosen memory")),
    "ccfi": Recipe(memory="fisher", penalty="dwc", adds=("fisher_replay", "dynamic consolidation")),
    "mixed_replay": Recipe(memory="mixed", adds=("fisher_replay", "herding + Fisher memory")),
    "mixed_distill": Recipe(
        memory="mixed", distill=True, adds=("mixed_replay", "distilling the old logits")
    ),
    "mixed_distill_head": Recipe(
        memory="mixed",
        distill=True,
        protect_head=True,
        adds=("mixed_distill", "frozen old head rows"),
    ),
    "full_retrain": Recipe(retrain=True),
    "stats_head": Recipe(head="lda"),
}
METHODS = CONTINUAL_METHODS
assert tuple(RECIPES) == METHODS, "config.CONTINUAL_METHODS and RECIPES differ"
DISTILL_TEMPERATURE = 2.0  # softened old-class logits, as in LwF / BiC
SHIPPED_RULE = (
    "the highest dev average accuracy after the last step among the methods that store no "
    "training text and whose every update takes at most continual.max_time_share of full "
    "retraining's (its own work: the one-time work on step 0's data apart); where none does, "
    "the fastest of those that store no text"
)
SHRINKAGE_GRID = (0.01, 0.03, 0.1, 0.3, 0.5, 0.7, 0.9)
SHRINKAGE_RULE = (
    "the shrinkage in SHRINKAGE_GRID whose LDA head has the highest class-balanced dev accuracy "
    "on the first model's classes (a tie: the smaller), chosen once when the statistics are "
    "first taken and kept for every update"
)
STATS_FILE = "class_stats.npz"  # beside a stats_head model's weights: what its next update needs


@dataclass(frozen=True)
class ClassStats:
    """What `stats_head` keeps of the data it has seen, and no text: per class (in the head's
    order) the number of examples and the sum of the features the head reads; over all of
    them the scatter Σ x xᵀ; and the shrinkage γ of the shared covariance."""

    labels: list[str]
    counts: np.ndarray  # (classes,)
    sums: np.ndarray  # (classes, features), float64
    scatter: np.ndarray  # (features, features), float64
    shrinkage: float = SHRINKAGE_GRID[0]

    @classmethod
    def of(cls, features: np.ndarray, labels: np.ndarray, order: list[str]) -> ClassStats:
        """The statistics of `features` (one row per example, labelled `labels`), classes in
        `order`."""
        x = np.asarray(features, dtype=np.float64)
        y = np.asarray(labels).astype(str)
        return cls(
            list(order),
            np.array([(y == c).sum() for c in order], dtype=np.int64),
            np.stack([x[y == c].sum(0) for c in order]),
            x.T @ x,
        )

    def add(self, features: np.ndarray, labels: np.ndarray, order: list[str]) -> ClassStats:
        """These statistics with more examples added, of new classes (`order` extends
        `self.labels`) or known ones. A class with no new example keeps its count and sum."""
        if order[: len(self.labels)] != self.labels or len(set(order)) != len(order):
            raise ValueError(f"classes {order} must extend {self.labels} with new ones")
        unknown = sorted({str(v) for v in np.asarray(labels)} - set(order))
        if unknown:
            raise ValueError(f"examples of {unknown}, not among {order}")
        more = ClassStats.of(features, labels, order)
        grown = len(order) - len(self.labels)
        return ClassStats(
            list(order),
            np.concatenate([self.counts, np.zeros(grown, np.int64)]) + more.counts,
            np.concatenate([self.sums, np.zeros((grown, self.sums.shape[1]))]) + more.sums,
            self.scatter + more.scatter,
            self.shrinkage,
        )

    def head(self, shrinkage: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """LDA in closed form, equal class priors (the class-balanced accuracy is what is
        scored): weights (classes × features) and biases. The shared covariance is the
        within-class scatter ÷ (examples − classes), shrunk toward its mean variance by γ."""
        gamma = self.shrinkage if shrinkage is None else shrinkage
        means = self.sums / np.maximum(self.counts, 1)[:, None]
        within = self.scatter - (means.T * self.counts) @ means
        covariance = within / max(int(self.counts.sum()) - len(self.labels), 1)
        size = len(covariance)
        scale = np.trace(covariance) / size
        target = (scale if scale > 0 else 1.0) * np.eye(size)
        shrunk = (1 - gamma) * covariance + gamma * target
        weights = np.linalg.solve(shrunk, means.T).T
        return weights, -0.5 * np.sum(weights * means, axis=1)

    @property
    def nbytes(self) -> int:
        """What keeping these statistics takes, as stored (labels as UTF-8)."""
        text = sum(len(label.encode()) for label in self.labels)
        return self.counts.nbytes + self.sums.nbytes + self.scatter.nbytes + 8 + text

    def save(self, path: Path) -> None:
        np.savez(
            path,
            labels=np.array(self.labels, dtype=str),
            counts=self.counts,
            sums=self.sums,
            scatter=self.scatter,
            shrinkage=np.float64(self.shrinkage),
        )

    @classmethod
    def load(cls, path: Path) -> ClassStats:
        with np.load(path, allow_pickle=False) as z:
            return cls(
                [str(v) for v in z["labels"]],
                z["counts"],
                z["sums"],
                z["scatter"],
                float(z["shrinkage"]),
            )


def pooled_features(clf: Classifier, texts: list[str]) -> np.ndarray:
    """The features `clf`'s head reads (texts × hidden), batched by length, in input order."""
    order = length_order(texts)
    features, _ = head_inputs(clf.model, token_batches(clf, [texts[i] for i in order], 64))
    return in_input_order(features, order)


def class_balanced_accuracy(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Mean over the classes of `actual` of each one's accuracy."""
    return float(np.mean([(predicted[actual == c] == c).mean() for c in np.unique(actual)]))


def first_stats(clf: Classifier, data: pd.DataFrame, dev: pd.DataFrame) -> ClassStats:
    """`ClassStats` of the data `clf` was trained on, the shrinkage chosen by `SHRINKAGE_RULE`
    on `dev`'s rows of its classes (none: the grid's smallest)."""
    stats = ClassStats.of(pooled_features(clf, data["text"].tolist()), data["label"], clf.labels)
    known = dev[dev["label"].astype(str).isin(clf.labels)]
    if known.empty:
        return stats
    x = pooled_features(clf, known["text"].tolist())
    actual = known["label"].astype(str).to_numpy()
    best, best_accuracy = SHRINKAGE_GRID[0], -1.0
    for gamma in SHRINKAGE_GRID:
        weights, bias = stats.head(gamma)
        accuracy = class_balanced_accuracy(
            np.array(clf.labels)[(x @ weights.T + bias).argmax(1)], actual
        )
        if accuracy > best_accuracy:
            best, best_accuracy = gamma, accuracy
    return dataclasses.replace(stats, shrinkage=best)


def with_head(
    clf: Classifier, labels: list[str], weights: np.ndarray, bias: np.ndarray
) -> Classifier:
    """A copy of `clf` for `labels` whose head is `weights`, `bias` (the encoder as it is)."""
    out = expand_head(clf, labels, seed=0)
    with torch.no_grad():
        out.model.classifier.weight.copy_(torch.from_numpy(weights))
        out.model.classifier.bias.copy_(torch.from_numpy(bias))
    return out


def expand_head(clf: Classifier, labels: list[str], seed: int) -> Classifier:
    """A copy of `clf` whose head has an output for every label in `labels` (a superset of its
    own, which keep their weights and order; new outputs start small and random)."""
    if labels[: len(clf.labels)] != clf.labels:
        raise ValueError(f"new labels {labels} must extend the model's {clf.labels}")
    model = copy.deepcopy(clf.model)
    old = model.classifier
    head = torch.nn.Linear(old.in_features, len(labels))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        head.weight.normal_(0.0, 0.02, generator=generator)
        head.bias.zero_()
        head.weight[: old.out_features] = old.weight
        head.bias[: old.out_features] = old.bias
    model.classifier = head
    model.num_labels = len(labels)
    model.config.num_labels = len(labels)
    model.config.id2label = dict(enumerate(labels))
    model.config.label2id = {label: i for i, label in enumerate(labels)}
    return Classifier(model, clf.tokenizer, list(labels), clf.max_length)


def dynamic_lambda(cross_entropy: float, penalty: float) -> float:
    """DWC: the consolidation weight that makes the penalty as large as the cross-entropy (their
    means over the last epoch); 0 while the weights have not moved from the anchor."""
    return cross_entropy / penalty if penalty > 0 else 0.0


@dataclass
class Consolidation:
    """EWC penalty Σ F_i (θ_i − θ*_i)² over the encoder's linear weights (the head, whose shape
    grows with each domain, is left free, and so is the word-embedding table, of which each text
    touches a few rows); `weight`: a fixed λ, or None for the dynamic one."""

    fisher: dict[str, torch.Tensor]
    anchor: dict[str, torch.Tensor]
    weight: float | None

    @classmethod
    def of(cls, clf: Classifier, texts: list[str], weight: float | None) -> Consolidation:
        params = dict(clf.model.named_parameters())
        table = params["bert.embeddings.word_embeddings.weight"]
        table.requires_grad_(False)  # no gradient: the Fisher skips it, and backward is faster
        try:
            encoder = [n for n in plannable_tensors(clf.model) if n.startswith("bert.encoder.")]
            fisher = fisher_diagonal(clf.model, token_batches(clf, texts, 1), encoder)
        finally:
            table.requires_grad_(True)
        return cls(fisher, {n: params[n].detach().clone() for n in fisher}, weight)

    def penalty(self, model: torch.nn.Module) -> torch.Tensor:
        params = dict(model.named_parameters())
        return sum((f * (params[n] - self.anchor[n]) ** 2).sum() for n, f in self.fisher.items())  # type: ignore[return-value]


@dataclass
class UpdateResult:
    classifier: Classifier
    seconds: float  # wall time of the whole update: scoring, Fisher and training
    steps: int
    train_examples: int
    lambdas: list[float] = field(default_factory=list)  # λ each optimizer step used
    stats: ClassStats | None = None  # stats_head: the statistics after the update


def train_on(
    clf: Classifier,
    data: pd.DataFrame,
    cfg: ContinualConfig,
    consolidation: Consolidation | None = None,
    progress: Callable[[int, int], None] = lambda *_: None,
    teacher: Classifier | None = None,
    protect_rows: int = 0,
    balanced: bool = False,
) -> tuple[int, list[float]]:
    """Train `clf` in place on `data` for `cfg.epochs` (the shared loop, `frugal.model.loop`), with
    the consolidation penalty if given (dynamic λ: set at each epoch from the last); with a
    `teacher` (the old model), distilled on its classes' logits at every batch: (1 − w)·CE +
    w·KD, w from `distill_weight`; with `protect_rows`, the head's first rows (the old classes)
    get no gradient; `balanced`: balanced softmax (Ren et al. 2020), the cross-entropy of the
    logits plus the log of each class's share of `data`, which trains the plain logits for
    equal class shares (what the class-balanced average accuracy scores) however unequal the
    new data and the memory are. Returns the optimizer steps and the λ each step used."""
    seed_everything(cfg.seed)
    model = clf.model
    index = {label: i for i, label in enumerate(clf.labels)}
    batcher = Batcher(clf, data["text"].tolist())
    targets = torch.tensor([index[str(y)] for y in data["label"]])
    per_epoch = math.ceil(len(data) / cfg.batch_size)
    total = cfg.epochs * per_epoch
    lambdas: list[float] = []
    weight = 0.0 if consolidation is None else consolidation.weight or 0.0
    sums = {"cross_entropy": 0.0, "penalty": 0.0}  # over the current epoch

    known = len(teacher.labels) if teacher is not None else 0
    kd_weight = distill_weight(cfg, known, len(clf.labels))
    log_prior = None  # balanced softmax: each class's log share of `data`, added to the logits
    if balanced:
        counts = torch.bincount(targets, minlength=len(clf.labels)).clamp(min=1)
        log_prior = torch.log(counts / counts.sum())

    def loss_of(indices: list[int], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = model(**batch).logits
        shifted = logits if log_prior is None else logits + log_prior
        loss = torch.nn.functional.cross_entropy(shifted, targets[indices])
        if teacher is not None:
            with torch.no_grad():
                old = torch.log_softmax(teacher.model(**batch).logits / DISTILL_TEMPERATURE, -1)
            new = torch.log_softmax(logits[:, :known] / DISTILL_TEMPERATURE, -1)
            kd = torch.nn.functional.kl_div(new, old, log_target=True, reduction="batchmean")
            loss = (1 - kd_weight) * loss + kd_weight * DISTILL_TEMPERATURE**2 * kd
        if consolidation is None:
            return loss
        with torch.set_grad_enabled(weight > 0):
            omega = consolidation.penalty(model)
        sums["cross_entropy"] += float(loss.detach())
        sums["penalty"] += float(omega.detach())
        lambdas.append(weight)
        return loss + weight * omega if weight > 0 else loss

    head = model.classifier
    kept_rows = (
        head.weight[:protect_rows].detach().clone(),
        head.bias[:protect_rows].detach().clone(),
    )

    def after_step(step: int, _: float) -> bool:
        nonlocal weight
        if protect_rows:  # also undo AdamW's decoupled weight decay on those rows
            with torch.no_grad():
                head.weight[:protect_rows] = kept_rows[0]
                head.bias[:protect_rows] = kept_rows[1]
        progress(step, total)
        if step % per_epoch == 0 and consolidation is not None and consolidation.weight is None:
            weight = dynamic_lambda(sums["cross_entropy"], sums["penalty"])  # means: counts cancel
            sums.update(cross_entropy=0.0, penalty=0.0)
        return False

    how = Optimization(cfg.learning_rate, cfg.weight_decay, cfg.warmup_fraction, cfg.batch_size)
    generator = torch.Generator().manual_seed(cfg.seed)
    hooks = []
    if protect_rows:
        mask = torch.ones(len(clf.labels), 1)
        mask[:protect_rows] = 0.0
        hooks = [
            head.weight.register_hook(lambda grad: grad * mask),
            head.bias.register_hook(lambda grad: grad * mask[:, 0]),
        ]
    if teacher is not None:
        teacher.model.eval()
    model.train()
    try:
        steps = train_steps(model, batcher, loss_of, total, how, generator, after_step)
    finally:
        for hook in hooks:
            hook.remove()
    model.eval()
    return steps, lambdas


def distill_weight(cfg: ContinualConfig, known: int, classes: int) -> float:
    """w in (1 − w)·CE + w·KD: `continual.distill_weight`, or with `auto` BiC's (Wu et al.
    2019): the share of the classes the update must keep, old ÷ all."""
    return known / classes if cfg.distill_weight == "auto" else float(cfg.distill_weight)


def train_initial(
    data: pd.DataFrame,
    cfg: ContinualConfig,
    max_length: int,
    progress: Callable[[int, int], None] = lambda *_: None,
) -> UpdateResult:
    """A model of `data`'s classes from the pretrained encoder (step 0, and full retraining)."""
    started = time.perf_counter()
    seed_everything(cfg.seed)
    clf = new_classifier(sorted(set(data["label"].astype(str))), max_length, data["text"].tolist())
    steps, _ = train_on(clf, data, cfg, progress=progress)
    return UpdateResult(clf, time.perf_counter() - started, steps, len(data))


def update(
    method: str,
    old: Classifier,
    new: pd.DataFrame,
    memory: pd.DataFrame | ClassStats,
    seen: pd.DataFrame,
    cfg: ContinualConfig,
    progress: Callable[[int, int], None] = lambda *_: None,
) -> UpdateResult:
    """One domain update by `method` from the `old` model: `new` is the arriving data,
    `memory` what this method kept of the old data (exemplars, or `ClassStats` for a
    statistics head), `seen` all old data (only full retraining and EWC's Fisher read it).
    `progress(step, total)` after every optimizer step."""
    if method not in RECIPES:
        raise ValueError(f"unknown method {method!r}; choose from {METHODS}")
    recipe = RECIPES[method]
    labels = check_update(old.labels, new)
    started = time.perf_counter()
    if recipe.head == "lda":  # the encoder as it is; the head from every class's statistics
        if not isinstance(memory, ClassStats) or memory.labels != old.labels:
            raise ValueError(f"{method} updates from the statistics of {old.labels}")
        features = pooled_features(old, new["text"].tolist())
        stats = memory.add(features, new["label"], labels)
        clf = with_head(old, labels, *stats.head())
        seconds = time.perf_counter() - started
        return UpdateResult(clf, seconds, 0, len(new), stats=stats)
    check_memory(memory, old.labels)
    if recipe.retrain:
        result = train_initial(pd.concat([seen, new]), cfg, old.max_length, progress)
        # keep the head's label order stable across steps
        return UpdateResult(
            _reorder(result.classifier, labels), result.seconds, result.steps, len(seen) + len(new)
        )
    consolidation = None
    if recipe.penalty == "ewc":  # Fisher of the old model on (a sample of) the old data, fixed λ
        sample = seen.sample(n=min(len(seen), cfg.fisher_texts), random_state=cfg.seed)
        consolidation = Consolidation.of(old, sample["text"].tolist(), cfg.ewc_lambda)
    elif recipe.penalty == "dwc":  # Fisher on (a sample of) every old class's exemplars, dynamic λ
        sample = memory.sample(n=min(len(memory), cfg.fisher_texts), random_state=cfg.seed)
        consolidation = Consolidation.of(old, sample["text"].tolist(), None)
    clf = expand_head(old, labels, cfg.seed)
    data = new if recipe.memory == "none" else pd.concat([new, memory])
    steps, lambdas = train_on(
        clf,
        data.reset_index(drop=True),
        cfg,
        consolidation,
        progress,
        teacher=old if recipe.distill else None,
        protect_rows=len(old.labels) if recipe.protect_head else 0,
        balanced=recipe.balanced,
    )
    return UpdateResult(clf, time.perf_counter() - started, steps, len(data), lambdas)


def _reorder(clf: Classifier, labels: list[str]) -> Classifier:
    """`clf` with its head's outputs permuted into the order `labels`."""
    if clf.labels == labels:
        return clf
    order = torch.tensor([clf.labels.index(label) for label in labels])
    head = clf.model.classifier
    with torch.no_grad():
        head.weight.copy_(head.weight[order].clone())
        head.bias.copy_(head.bias[order].clone())
    clf.model.config.id2label = dict(enumerate(labels))
    clf.model.config.label2id = {label: i for i, label in enumerate(labels)}
    return Classifier(clf.model, clf.tokenizer, list(labels), clf.max_length)


def predict_labels(clf: Classifier, texts: list[str]) -> np.ndarray:
    """The label `clf` predicts for each text."""
    return np.array(clf.labels)[predict_proba(clf, texts).argmax(1)]


def per_class_accuracy(clf: Classifier, test: pd.DataFrame) -> dict[str, float]:
    """Accuracy on each class of `test` that the model knows (rows of other classes, and known
    classes with no rows in `test`, are left out)."""
    known = test[test["label"].astype(str).isin(clf.labels)]
    predicted = predict_labels(clf, known["text"].tolist())
    actual = known["label"].astype(str).to_numpy()
    return {
        label: float((predicted[actual == label] == label).mean())
        for label in clf.labels
        if (actual == label).any()
    }


def forgetting(history: list[dict[str, float]]) -> dict[str, float]:
    """Per class seen before the last step: its best accuracy at an earlier step minus its
    accuracy now (positive = forgotten)."""
    if len(history) < 2:
        return {}
    now = history[-1]
    earlier = history[:-1]
    return {
        label: max(step[label] for step in earlier if label in step) - now[label]
        for label in now
        if any(label in step for step in earlier)
    }


@dataclass
class StepRecord:
    method: str
    step: int
    classes: list[str]  # every class the model knows after this step
    per_class: dict[str, float]  # test accuracy per class
    average_accuracy: float  # mean of per_class: every class seen so far counts the same
    dev_average_accuracy: float  # the same on dev: what the shipped method is chosen on
    forgetting: dict[str, float]  # per old class: best earlier accuracy − now
    seconds: float
    train_examples: int
    memory_examples: int  # training texts kept after this step (replay memory, or all seen)
    memory_bytes: int  # what is kept of the old data after this step: texts, or statistics
    lambdas: list[float] = field(default_factory=list)
    setup_seconds: float = 0.0  # of `seconds`, the one-time work on step 0's data (update 1)

    def row(self) -> dict:
        return {
            "method": self.method,
            "step": self.step,
            "n_classes": len(self.classes),
            "average_accuracy": self.average_accuracy,
            "dev_average_accuracy": self.dev_average_accuracy,
            "mean_forgetting": float(np.mean(list(self.forgetting.values())))
            if self.forgetting
            else 0.0,
            "seconds": self.seconds,
            "train_examples": self.train_examples,
            "memory_examples": self.memory_examples,
            "memory_bytes": self.memory_bytes,
            "setup_seconds": self.setup_seconds,
        }


def run_continual(
    steps: list[pd.DataFrame],
    dev: pd.DataFrame,
    test: pd.DataFrame,
    cfg: ContinualConfig,
    on_model: Callable[[str, int, Classifier, ClassStats | None], None] = lambda *_: None,
    log: Callable[[str], None] = lambda _: None,
    progress: Callable[[str, int, int], None] = lambda *_: None,
    trained: Classifier | None = None,
) -> list[StepRecord]:
    """Step 0 trains on `steps[0]` (shared by every method), or is `trained`, a model already
    trained on it (the train stage's); each later step updates every method's model with that
    step's data. `on_model(method, step, classifier, stats)` sees every model (step 0 as
    method "initial"), with its `ClassStats` for a statistics head (else None);
    `progress(phase, done, total)` follows every training. Every model is scored on `test`
    (reported) and `dev` (chosen on; a statistics head's shrinkage too, on step 0's classes)."""
    torch.set_num_threads(cfg.threads)
    if trained is None:
        log(f"step 0: training on {len(steps[0])} examples of {sorted(set(steps[0]['label']))}")
        initial = train_initial(
            steps[0], cfg, cfg.max_length, lambda done, total: progress("step 0", done, total)
        )
    else:
        initial = UpdateResult(trained, 0.0, 0, len(steps[0]))
    on_model("initial", 0, initial.classifier, None)
    accuracy0 = per_class_accuracy(initial.classifier, test)
    records = [
        StepRecord(
            "initial",
            0,
            initial.classifier.labels,
            accuracy0,
            float(np.mean(list(accuracy0.values()))),
            _dev_average(initial.classifier, dev),
            {},
            initial.seconds,
            initial.train_examples,
            0,
            0,
        )
    ]
    models = {m: initial.classifier for m in cfg.methods}
    memory: dict[str, pd.DataFrame | ClassStats] = {}
    history: dict[str, list[dict[str, float]]] = {m: [accuracy0] for m in cfg.methods}
    pending: dict[str, float] = {}  # keeping step 0's exemplars or statistics counts in update 1
    for method in cfg.methods:
        started = time.perf_counter()
        if RECIPES[method].head == "lda":
            memory[method] = first_stats(initial.classifier, steps[0], dev)
        else:
            memory[method] = _keep(method, initial.classifier, steps[0], cfg)
        pending[method] = time.perf_counter() - started
    seen = steps[0]
    for index, new in enumerate(steps[1:], start=1):
        for method in cfg.methods:
            log(f"step {index}: {method} on {len(new)} new examples")
            result = update(
                method,
                models[method],
                new,
                memory[method],
                seen,
                cfg,
                lambda done, total: progress(f"step {index} {method}", done, total),  # noqa: B023
            )
            setup = pending.pop(method, 0.0)
            seconds = result.seconds + setup
            if result.stats is not None:
                memory[method] = result.stats
            elif RECIPES[method].memory != "none":
                started = time.perf_counter()
                kept = _keep(method, result.classifier, new, cfg)
                memory[method] = pd.concat([memory[method], kept], ignore_index=True)
                seconds += time.perf_counter() - started
            models[method] = result.classifier
            on_model(method, index, result.classifier, result.stats)
            accuracy = per_class_accuracy(result.classifier, test)
            history[method].append(accuracy)
            records.append(
                StepRecord(
                    method,
                    index,
                    result.classifier.labels,
                    accuracy,
                    float(np.mean(list(accuracy.values()))),
                    _dev_average(result.classifier, dev),
                    forgetting(history[method]),
                    seconds,
                    result.train_examples,
                    *memory_size(
                        pd.concat([seen, new]) if RECIPES[method].reads_old_data else memory[method]
                    ),
                    result.lambdas,
                    setup,
                )
            )
            log(
                f"step {index} {method}: average accuracy {records[-1].average_accuracy:.4f} "
                f"in {seconds:.1f} s"
            )
        seen = pd.concat([seen, new], ignore_index=True)
    return records


def memory_size(memory: pd.DataFrame | ClassStats) -> tuple[int, int]:
    """Training texts kept for the next update, and their bytes: the texts and labels as
    UTF-8 (a replay memory, or all the data seen for a method that reads it), or the
    statistics as stored (no text)."""
    if isinstance(memory, ClassStats):
        return 0, memory.nbytes
    return len(memory), int(
        sum(len(str(v).encode()) for column in ("text", "label") for v in memory[column])
    )


def _dev_average(clf: Classifier, dev: pd.DataFrame) -> float:
    return float(np.mean(list(per_class_accuracy(clf, dev).values())))


def _keep(method: str, clf: Classifier, data: pd.DataFrame, cfg: ContinualConfig) -> pd.DataFrame:
    """The exemplars of one step's `data` that `method` keeps (none for methods without memory)."""
    kind = RECIPES[method].memory
    return keep_exemplars(kind, clf, data, cfg.memory_fraction, cfg.typical_share, cfg.seed)


def summarize_methods(table: pd.DataFrame) -> dict[str, dict]:
    """Per method after the last step: average accuracy, mean forgetting, its gap to full
    retraining (percentage points), what it keeps of the old data, and the update time summed
    over steps, also as a share of full retraining's: summed (one-time work on step 0's data
    included), and the largest of any one update's own work (that work apart: `setup_seconds`).
    `table`: one row per `StepRecord.row()` of `run_continual`'s records."""
    updates = table[table["method"] != "initial"]
    last = updates[updates["step"] == updates["step"].max()].set_index("method")
    seconds = updates.groupby("method")["seconds"].sum()
    out = {}
    for method in last.index:
        out[method] = {
            "final_average_accuracy": float(last.loc[method, "average_accuracy"]),
            "final_dev_average_accuracy": float(last.loc[method, "dev_average_accuracy"]),
            "final_mean_forgetting": float(last.loc[method, "mean_forgetting"]),
            "update_seconds": float(seconds[method]),
            "memory_examples": int(last.loc[method, "memory_examples"]),
        }
        if "memory_bytes" in last.columns and not pd.isna(last.loc[method, "memory_bytes"]):
            out[method]["memory_bytes"] = int(last.loc[method, "memory_bytes"])
        if "full_retrain" in last.index:
            full = last.loc["full_retrain"]
            out[method]["gap_to_full_retrain_pt"] = 100 * float(
                full["average_accuracy"] - last.loc[method, "average_accuracy"]
            )
            out[method]["time_vs_full_retrain"] = float(seconds[method] / seconds["full_retrain"])
            setup = updates["setup_seconds"].fillna(0.0) if "setup_seconds" in updates else 0.0
            own = updates["seconds"] - setup
            per_step = updates.assign(own=own).pivot_table("own", "step", "method")
            out[method]["max_update_time_vs_full_retrain"] = float(
                (per_step[method] / per_step["full_retrain"]).max()
            )
    return out


def ablation(summary: Mapping[str, Mapping]) -> list[dict]:
    """What each part adds: for every method that extends another one that also ran
    (`Recipe.adds`), the change in dev and test average accuracy after the last step, in
    points."""
    rows = []
    for method, entry in summary.items():
        adds = RECIPES[method].adds
        if adds is None or adds[0] not in summary:
            continue
        base = summary[adds[0]]
        rows.append(
            {
                "method": method,
                "adds": adds[1],
                "over": adds[0],
                "dev_pt": 100
                * (entry["final_dev_average_accuracy"] - base["final_dev_average_accuracy"]),
                "test_pt": 100 * (entry["final_average_accuracy"] - base["final_average_accuracy"]),
            }
        )
    return rows


def choose_shipped(summary: Mapping[str, Mapping], max_time_share: float) -> tuple[str, str]:
    """The method to ship (`SHIPPED_RULE`) from `summarize_methods`' summary, and why. Methods
    that need old training texts (exemplar memory, or the old data itself) are out; the time
    budget applies where full retraining ran to compare with. Where no method that stores no
    text meets the time budget (tiny data, where fixed costs dominate), the fastest of them
    ships and the reason says so."""
    textless = {m: e for m, e in summary.items() if not RECIPES[m].stores_text}
    if not textless:
        raise DataError(
            "continual: every method in continual.methods keeps old training texts; add one "
            f"that stores none, {[m for m in METHODS if not RECIPES[m].stores_text]}, to "
            "continual.methods"
        )

    def share(m: str) -> float:  # the slowest update's own work ÷ full retraining's
        return textless[m].get("max_update_time_vs_full_retrain", 0.0)

    eligible = {m: e for m, e in textless.items() if share(m) <= max_time_share}
    if not eligible:
        fastest = min(textless, key=share)
        return fastest, (
            f"{fastest}: no method that stores no text took at most {max_time_share:.0%} "
            f"of full retraining's time per update; {fastest} was the fastest "
            f"({share(fastest):.0%})"
        )
    best = max(eligible, key=lambda m: eligible[m]["final_dev_average_accuracy"])
    others = ", ".join(
        f"{m} {100 * e['final_dev_average_accuracy']:.2f}%"
        for m, e in sorted(
            eligible.items(), key=lambda item: -item[1]["final_dev_average_accuracy"]
        )
        if m != best
    )
    reason = (
        f"{best}: dev average accuracy {100 * eligible[best]['final_dev_average_accuracy']:.2f}% "
        f"after the last step, the highest within budget" + (f" (then {others})" if others else "")
    )
    return best, reason
