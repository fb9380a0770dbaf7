"""Continual updates when new domains arrive, without retraining on everything.

CCFI (Hua et al., arXiv 2201.01420), and the baselines it is measured against:

* **Exemplar memory by Fisher information.** After a step, each class's examples are scored by
  the trace of their Fisher information under the model just trained, and the top-scoring
  ones, `memory_fraction` of the class, are kept. The trace is taken over the classification
  head, where it has a closed form: with pooled features h and predicted distribution p,
  E_y‖∇ log p(y|x)‖² = (1 − ‖p‖²)(‖h‖² + 1). It is largest for examples near the decision
  boundary, needs no label, and costs one batched forward pass. Both Fisher quantities come
  from `frugal.fisher`.
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
(herding + Fisher: `frugal.exemplars`); `mixed_distill` also distils the old model's logits
on every batch (LwF / iCaRL; weighted as BiC by default, from the share of old classes);
`mixed_distill_head` also freezes the old classes' rows of the head, where most forgetting of
a pretrained encoder's classifier happens (Zheng et al. 2023); and `balanced_replay` trains
random replay with balanced softmax, against the bias toward whichever side, new data or
memory, is larger (a large class arriving late outweighs every old class's memory). Every
method is a `Recipe`.

Pure: data frames and models in, models and numbers out; no Prefect, MLflow or files.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import torch

from frugal.config import CONTINUAL_METHODS, ContinualConfig
from frugal.domains import check_memory, check_update
from frugal.errors import DataError
from frugal.exemplars import MemoryKind, keep_exemplars
from frugal.fisher import fisher_diagonal
from frugal.loop import Batcher, Optimization, train_steps
from frugal.modeling import Classifier, new_classifier, predict_proba, token_batches
from frugal.quantize import plannable_tensors
from frugal.training import seed_everything


@dataclass(frozen=True)
class Recipe:
    """How a method updates a model when a domain arrives."""

    memory: MemoryKind = "none"  # old exemplars kept per class and replayed (`frugal.exemplars`)
    penalty: Literal["none", "ewc", "dwc"] = "none"  # EWC: fixed λ; dwc: CCFI's dynamic λ
    distill: bool = False  # match the old model's logits on every batch (continual.distill_weight)
    balanced: bool = False  # balanced softmax: the update's class shares do not bias decisions
    protect_head: bool = False  # the old classes' rows of the head are not trained
    retrain: bool = False  # from the pretrained encoder on all data seen (the upper bound)
    adds: tuple[str, str] | None = None  # (the method it extends, the one part it adds)

    @property
    def reads_old_data(self) -> bool:
        """Whether an update reads the old data itself (not a bounded memory of it)."""
        return self.retrain or self.penalty == "ewc"


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
}
METHODS = CONTINUAL_METHODS
assert tuple(RECIPES) == METHODS, "config.CONTINUAL_METHODS and RECIPES differ"
DISTILL_TEMPERATURE = 2.0  # softened old-class logits, as in LwF / BiC
SHIPPED_RULE = (
    "the highest dev average accuracy after the last step among the methods that keep at most "
    "continual.memory_fraction of the old data and take at most continual.max_time_share of "
    "full retraining's update time (where none does, the fastest of those within the memory budget)"
)


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
    """Train `clf` in place on `data` for `cfg.epochs` (the shared loop, `frugal.loop`), with
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
    memory: pd.DataFrame,
    seen: pd.DataFrame,
    cfg: ContinualConfig,
    progress: Callable[[int, int], None] = lambda *_: None,
) -> UpdateResult:
    """One domain update by `method` from the `old` model: `new` is the arriving data,
    `memory` the old exemplars this method kept, `seen` all old data (only full retraining and
    EWC's Fisher read it). `progress(step, total)` after every optimizer step."""
    if method not in RECIPES:
        raise ValueError(f"unknown method {method!r}; choose from {METHODS}")
    recipe = RECIPES[method]
    labels = check_update(old.labels, new)
    check_memory(memory, old.labels)
    started = time.perf_counter()
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
    memory_examples: int  # old examples kept for replay after this step
    lambdas: list[float] = field(default_factory=list)

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
        }


def run_continual(
    steps: list[pd.DataFrame],
    dev: pd.DataFrame,
    test: pd.DataFrame,
    cfg: ContinualConfig,
    on_model: Callable[[str, int, Classifier], None] = lambda *_: None,
    log: Callable[[str], None] = lambda _: None,
    progress: Callable[[str, int, int], None] = lambda *_: None,
    trained: Classifier | None = None,
) -> list[StepRecord]:
    """Step 0 trains on `steps[0]` (shared by every method), or is `trained`, a model already
    trained on it (the train stage's); each later step updates every method's model with that
    step's data. `on_model(method, step, classifier)` sees every model (step 0 as method
    "initial"); `progress(phase, done, total)` follows every training. Every model is scored on
    `test` (reported) and `dev` (chosen on)."""
    torch.set_num_threads(cfg.threads)
    if trained is None:
        log(f"step 0: training on {len(steps[0])} examples of {sorted(set(steps[0]['label']))}")
        initial = train_initial(
            steps[0], cfg, cfg.max_length, lambda done, total: progress("step 0", done, total)
        )
    else:
        initial = UpdateResult(trained, 0.0, 0, len(steps[0]))
    on_model("initial", 0, initial.classifier)
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
        )
    ]
    models = {m: initial.classifier for m in cfg.methods}
    memory: dict[str, pd.DataFrame] = {}
    history: dict[str, list[dict[str, float]]] = {m: [accuracy0] for m in cfg.methods}
    pending: dict[str, float] = {}  # choosing step 0's exemplars counts in the first update
    for method in cfg.methods:
        started = time.perf_counter()
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
            seconds = result.seconds + pending.pop(method, 0.0)
            if RECIPES[method].memory != "none":
                started = time.perf_counter()
                kept = _keep(method, result.classifier, new, cfg)
                memory[method] = pd.concat([memory[method], kept], ignore_index=True)
                seconds += time.perf_counter() - started
            models[method] = result.classifier
            on_model(method, index, result.classifier)
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
                    len(memory[method]),
                    result.lambdas,
                )
            )
            log(
                f"step {index} {method}: average accuracy {records[-1].average_accuracy:.4f} "
                f"in {seconds:.1f} s"
            )
        seen = pd.concat([seen, new], ignore_index=True)
    return records


def _dev_average(clf: Classifier, dev: pd.DataFrame) -> float:
    return float(np.mean(list(per_class_accuracy(clf, dev).values())))


def _keep(method: str, clf: Classifier, data: pd.DataFrame, cfg: ContinualConfig) -> pd.DataFrame:
    """The exemplars of one step's `data` that `method` keeps (none for methods without memory)."""
    kind = RECIPES[method].memory
    return keep_exemplars(kind, clf, data, cfg.memory_fraction, cfg.typical_share, cfg.seed)


def summarize_methods(table: pd.DataFrame) -> dict[str, dict]:
    """Per method after the last step: average accuracy, mean forgetting, its gap to full
    retraining (percentage points), and the update time summed over steps, also as a share of
    full retraining's. `table`: one row per `StepRecord.row()` of `run_continual`'s records."""
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
        }
        if "full_retrain" in last.index:
            full = last.loc["full_retrain"]
            out[method]["gap_to_full_retrain_pt"] = 100 * float(
                full["average_accuracy"] - last.loc[method, "average_accuracy"]
            )
            out[method]["time_vs_full_retrain"] = float(seconds[method] / seconds["full_retrain"])
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
    that read the old data itself (full retraining, EWC's Fisher) are out of the memory
    budget; the time budget applies where full retraining ran to compare with. Where no
    method within the memory budget meets the time budget (tiny data, where fixed costs
    dominate), the fastest of them ships and the reason says so."""
    in_memory = {m: e for m, e in summary.items() if not RECIPES[m].reads_old_data}
    if not in_memory:
        raise DataError(
            "continual: no method keeps within the memory budget; add one of "
            f"{[m for m in METHODS if not RECIPES[m].reads_old_data]} to continual.methods"
        )
    eligible = {
        m: e for m, e in in_memory.items() if e.get("time_vs_full_retrain", 0.0) <= max_time_share
    }
    if not eligible:
        fastest = min(in_memory, key=lambda m: in_memory[m]["time_vs_full_retrain"])
        share = in_memory[fastest]["time_vs_full_retrain"]
        return fastest, (
            f"{fastest}: no method within the memory budget took at most {max_time_share:.0%} "
            f"of full retraining's time; {fastest} was the fastest ({share:.0%})"
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
