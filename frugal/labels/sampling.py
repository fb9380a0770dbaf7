"""Active learning: which pool examples to label next.

Pure functions of arrays -> arrays (numpy, scikit-learn); no Prefect, no MLflow. The only
file access is `load_inputs`, which reads the splits and their cached embeddings.

How a round works, and why:

* Features. Every text is embedded once by the pretrained encoder (masked mean of the last
  hidden states, L2-normalised, as all-MiniLM-L6-v2 was trained) and the embeddings are cached
  by the `embed` stage. They are standardised with the pool's own mean and spread (no labels
  involved), so every dimension counts alike for the linear head and the distances.
* Proxy. Each round fits a multinomial logistic regression on the labeled embeddings. It takes
  well under a second, so a strategy can be simulated over dozens of rounds and several seeds;
  the final model is fine-tuned by the `train` stage on the labels bought here.
* Cold start. Without labels there is nothing to be uncertain about: the first batch is the
  pool example nearest to each of `initial_size` k-means centroids (covers the embedding space,
  so rare classes tend to be hit), or a random draw.
* Strategies (higher score = label first; ties broken at random):
  - ``random``;
  - ``least_confidence``: 1 - max p;
  - ``margin``: -(p1 - p2), the gap between the two likeliest classes;
  - ``entropy``: -Σ p log p;
  - ``kcenter``: greedy core-set — repeatedly take the example farthest from everything
    labeled or already chosen (Sener & Savarese 2018);
  - ``fisher``: trace of the Fisher information of the head's weights at this example, i.e.
    the expected squared norm of the log-likelihood gradient with the label drawn from the
    model's own prediction (the score CCFI, arXiv 2201.01420, ranks exemplars by). For softmax
    regression the gradient is (p - e_y) ⊗ [x, 1], so the trace is (1 - Σ p²)(‖x‖² + 1): Gini
    impurity times the feature norm, computed exactly rather than by sampling labels
    (`frugal.model.fisher.fisher_trace_scores`);
  - ``cal``: contrastive active learning (Margatina et al., EMNLP 2021), aimed at the
    fine-tuned model: the candidates whose prediction differs most — mean KL divergence from
    the predictions of their nearest labeled neighbours in embedding space — are the examples
    that look like labeled ones but are read differently, which a fine-tuned encoder learns
    from; outliers (far from everything labeled) do not win on uncertainty alone;
  - ``badge``: k-means++ seeding on gradient embeddings (p - e_ŷ) ⊗ [x, 1] with ŷ the predicted
    class (Ash et al. 2020): large gradients = uncertain, spread out = diverse. Distances use
    ⟨g_i, g_j⟩ = ⟨a_i, a_j⟩⟨x_i, x_j⟩, so the C·(d+1)-wide embeddings are never built.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression

from frugal.config import SampleConfig
from frugal.errors import DataError
from frugal.files import read_embeddings
from frugal.model.fisher import fisher_trace_scores

STRATEGIES = (
    "random",
    "least_confidence",
    "margin",
    "entropy",
    "kcenter",
    "fisher",
    "badge",
    "cal",
)
CAL_NEIGHBOURS = 10  # labeled neighbours per candidate (Margatina et al. 2021 use 10)
COLD_STARTS = ("kmeans", "random")

# An annotator receives pool positions and returns their labels (a person, or the pool's own
# hidden labels in simulation).
Annotator = Callable[[np.ndarray], np.ndarray]


def standardize(pool_embeddings: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Centre and scale every embedding matrix by the pool's per-dimension mean and spread
    (in float64: the proxy and its scores run in float64, see `stable`)."""
    matrices = [m.astype(np.float64) for m in (pool_embeddings, *others)]
    mean = matrices[0].mean(axis=0)
    spread = matrices[0].std(axis=0) + 1e-8
    return [(m - mean) / spread for m in matrices]


@dataclass
class Proxy:
    """Linear head on frozen embeddings; `classes` = the labels it has seen."""

    classes: np.ndarray
    model: LogisticRegression | None  # None when only one class has been labeled

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        if self.model is None:
            return np.ones((len(features), 1))
        return self.model.predict_proba(features)

    def predict(self, features: np.ndarray) -> np.ndarray:
        return self.classes[self.predict_proba(features).argmax(axis=1)]


def fit_proxy(features: np.ndarray, labels: np.ndarray, inverse_l2: float) -> Proxy:
    """Multinomial logistic regression; `inverse_l2` is scikit-learn's C."""
    classes = np.unique(labels)
    if classes.size < 2:
        return Proxy(classes, None)
    model = LogisticRegression(C=inverse_l2, max_iter=1000)
    model.fit(features, labels)
    return Proxy(model.classes_, model)


def least_confidence_scores(probs: np.ndarray) -> np.ndarray:
    """1 - probability of the likeliest class."""
    return 1.0 - probs.max(axis=1)


def margin_scores(probs: np.ndarray) -> np.ndarray:
    """Smaller gap between the two likeliest classes = more informative."""
    if probs.shape[1] < 2:
        return np.zeros(len(probs))
    top2 = np.sort(probs, axis=1)[:, -2:]
    return -(top2[:, 1] - top2[:, 0])


def entropy_scores(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy of the predictive distribution (nats)."""
    return -(probs * np.log(np.clip(probs, 1e-12, 1.0))).sum(axis=1)


def cal_scores(
    probs: np.ndarray, features: np.ndarray, candidates: np.ndarray, labeled: np.ndarray
) -> np.ndarray:
    """Per candidate: mean KL(p(neighbour) ‖ p(candidate)) over its `CAL_NEIGHBOURS` nearest
    labeled examples (squared Euclidean distance on the standardised embeddings)."""
    anchors = np.flatnonzero(labeled)
    k = min(CAL_NEIGHBOURS, anchors.size)
    squared_norms = (features**2).sum(axis=1)
    distances = (
        squared_norms[candidates, None]
        + squared_norms[anchors]
        - 2.0 * features[candidates] @ features[anchors].T
    )
    nearest = anchors[np.argsort(stable(distances), axis=1, kind="stable")[:, :k]]
    log_p = np.log(np.clip(probs, 1e-12, 1.0))
    neighbour_p, neighbour_log_p = probs[nearest], log_p[nearest]  # (candidates, k, classes)
    kl = (neighbour_p * (neighbour_log_p - log_p[candidates, None, :])).sum(axis=2)
    return kl.mean(axis=1)


def kcenter_greedy(
    features: np.ndarray, labeled: np.ndarray, k: int, rng: np.random.Generator
) -> np.ndarray:
    """Positions of `k` unlabeled examples, each the farthest from all labeled/chosen ones."""
    squared_norms = (features**2).sum(axis=1)

    def squared_distance_to(position: int) -> np.ndarray:
        return np.maximum(
            squared_norms + squared_norms[position] - 2.0 * features @ features[position], 0.0
        )

    nearest = np.full(len(features), np.inf)
    centres = np.flatnonzero(labeled)
    for start in range(0, centres.size, 1024):  # one matrix product per block of centres
        block = centres[start : start + 1024]
        distances = (
            squared_norms[:, None] + squared_norms[block] - 2.0 * features @ features[block].T
        )
        nearest = np.minimum(nearest, np.maximum(distances, 0.0).min(axis=1))
    if not labeled.any():  # no centre yet: start from a random example
        first = int(rng.choice(np.flatnonzero(~labeled)))
        nearest = squared_distance_to(first)
        chosen = [first]
    else:
        chosen = []
    nearest[labeled] = -np.inf
    nearest[chosen] = -np.inf
    while len(chosen) < k:
        position = int(np.argmax(stable(nearest)))
        chosen.append(position)
        nearest = np.minimum(nearest, squared_distance_to(position))
        nearest[position] = -np.inf
    return np.array(chosen, dtype=int)


def badge_select(
    probs: np.ndarray,
    features: np.ndarray,
    candidates: np.ndarray,
    k: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """k-means++ seeding over gradient embeddings of the candidate positions (BADGE)."""
    probs, x = probs[candidates], np.hstack([features[candidates], np.ones((len(candidates), 1))])
    residual = probs.copy()  # a = p - e_ŷ, the gradient of the loss wrt the logits
    residual[np.arange(len(probs)), probs.argmax(axis=1)] -= 1.0
    residual_gram_diag = (residual**2).sum(axis=1)
    x_gram_diag = (x**2).sum(axis=1)
    squared_norms = residual_gram_diag * x_gram_diag  # ‖a ⊗ x‖² = ‖a‖²‖x‖²

    def squared_distance_to(i: int) -> np.ndarray:
        inner = (residual @ residual[i]) * (x @ x[i])
        return np.maximum(squared_norms + squared_norms[i] - 2.0 * inner, 0.0)

    first = int(np.argmax(stable(squared_norms)))  # the largest gradient, as in BADGE
    chosen = [first]
    nearest = squared_distance_to(first)
    while len(chosen) < k:
        total = nearest.sum()
        if total <= 0:  # every remaining embedding coincides with a centre: fill at random
            rest = np.setdiff1d(np.arange(len(candidates)), chosen)
            chosen.extend(rng.choice(rest, size=k - len(chosen), replace=False).tolist())
            break
        i = int(rng.choice(len(candidates), p=nearest / total))
        chosen.append(i)
        nearest = np.minimum(nearest, squared_distance_to(i))
    return candidates[np.array(chosen, dtype=int)]


def stable(scores: np.ndarray) -> np.ndarray:
    """float64 scores rounded to float32 (7 significant digits) before they rank examples:
    float noise from another CPU's BLAS (~13th digit) cannot reorder them, and equal scores
    fall to the tie-break (seeded, or pool order)."""
    return scores.astype(np.float32)


def cold_start(features: np.ndarray, k: int, method: str, rng: np.random.Generator) -> np.ndarray:
    """First batch without labels: nearest example to each k-means centroid, or random."""
    if method == "random":
        return rng.choice(len(features), size=k, replace=False)
    if method != "kmeans":
        raise ValueError(f"unknown cold start {method!r}; choose from {COLD_STARTS}")
    seed = int(rng.integers(2**31 - 1))
    centroids = KMeans(n_clusters=k, n_init=1, random_state=seed).fit(features).cluster_centers_
    squared_norms = (features**2).sum(axis=1)
    chosen: list[int] = []
    taken = np.zeros(len(features), dtype=bool)
    for centroid in centroids:
        distance = stable(squared_norms - 2.0 * features @ centroid)
        distance[taken] = np.inf  # two centroids never pick the same example
        position = int(np.argmin(distance))  # ties: the first in pool order
        chosen.append(position)
        taken[position] = True
    return np.array(chosen, dtype=int)


def select_batch(
    strategy: str,
    proxy: Proxy,
    features: np.ndarray,
    labeled: np.ndarray,
    k: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Positions of the next `k` pool examples to label (never one already labeled)."""
    candidates = np.flatnonzero(~labeled)
    k = min(k, candidates.size)
    if k == 0:
        return np.array([], dtype=int)
    if strategy == "random":
        return rng.choice(candidates, size=k, replace=False)
    if strategy == "kcenter":
        return kcenter_greedy(features, labeled, k, rng)
    probs = proxy.predict_proba(features)
    if strategy == "badge":
        return badge_select(probs, features, candidates, k, rng)
    scorers: dict[str, Callable[[], np.ndarray]] = {
        "least_confidence": lambda: least_confidence_scores(probs[candidates]),
        "margin": lambda: margin_scores(probs[candidates]),
        "entropy": lambda: entropy_scores(probs[candidates]),
        "fisher": lambda: fisher_trace_scores(probs[candidates], features[candidates]),
        "cal": lambda: cal_scores(probs, features, candidates, labeled),
    }
    if strategy not in scorers:
        raise ValueError(f"unknown strategy {strategy!r}; choose from {STRATEGIES}")
    scores = stable(scorers[strategy]())
    # Highest score first; a random secondary key breaks ties (e.g. before two classes exist).
    order = np.lexsort((rng.random(candidates.size), -scores))
    return candidates[order[:k]]


@dataclass(frozen=True)
class RoundResult:
    n_labels: int
    accuracy: float  # of the proxy, on the evaluation set
    seconds: float  # fitting the proxy and choosing the next batch


@dataclass
class SamplingRun:
    strategy: str
    seed: int
    positions: list[int] = field(default_factory=list)  # pool positions in buying order
    labels: list[str] = field(default_factory=list)
    rounds: list[int] = field(default_factory=list)  # round of each bought label (0 = start)
    curve: list[RoundResult] = field(default_factory=list)


def run_rounds(
    features: np.ndarray,
    annotate: Annotator,
    eval_features: np.ndarray,
    eval_labels: np.ndarray,
    *,
    strategy: str,
    budget: int,
    batch_size: int,
    initial_size: int,
    cold_start_method: str,
    inverse_l2: float,
    seed: int,
    start_positions: Sequence[int] = (),
    start_labels: Sequence[str] = (),
    start_rounds: Sequence[int] = (),
) -> SamplingRun:
    """Buy labels round by round until `budget`, scoring the proxy after every round.

    Resumes from `start_positions` (labels already bought, with their rounds) when given;
    otherwise the first round is the cold start. The last curve point is at the final size.
    """
    if strategy not in STRATEGIES:
        raise DataError(f"unknown sampling strategy {strategy!r}; choose from {STRATEGIES}")
    if budget > len(features):
        raise DataError(
            f"budget of {budget} labels exceeds the pool ({len(features)} examples): "
            "lower sample.budget in params.yaml"
        )
    rng = np.random.default_rng(seed)
    run = SamplingRun(strategy, seed)
    labeled = np.zeros(len(features), dtype=bool)
    label_of = np.empty(len(features), dtype=object)

    def buy(positions: np.ndarray, labels: Sequence[str], rounds: Sequence[int]) -> None:
        if labeled[positions].any() or len(set(positions.tolist())) < len(positions):
            raise DataError("an example was bought twice: the labeled set has duplicate ids")
        run.positions.extend(int(p) for p in positions)
        run.labels.extend(str(label) for label in labels)
        run.rounds.extend(int(r) for r in rounds)
        labeled[positions] = True
        label_of[positions] = [str(label) for label in labels]

    if len(start_positions):
        start_rounds = list(start_rounds) or [0] * len(start_positions)
        buy(np.asarray(start_positions, dtype=int), list(start_labels), start_rounds)
    else:
        first = cold_start(features, min(initial_size, budget), cold_start_method, rng)
        buy(first, annotate(first), [0] * len(first))
    round_no = max(run.rounds) + 1
    while True:
        started = time.perf_counter()
        proxy = fit_proxy(features[labeled], label_of[labeled].astype(str), inverse_l2)
        accuracy = float((proxy.predict(eval_features) == eval_labels).mean())
        remaining = budget - int(labeled.sum())
        batch = (
            select_batch(strategy, proxy, features, labeled, min(batch_size, remaining), rng)
            if remaining > 0
            else np.array([], dtype=int)
        )
        run.curve.append(RoundResult(int(labeled.sum()), accuracy, time.perf_counter() - started))
        if batch.size == 0:
            return run
        buy(batch, annotate(batch), [round_no] * len(batch))
        round_no += 1


def labels_to_reach(curve: Sequence[RoundResult], target: float) -> int | None:
    """Fewest labels at which the curve first reaches `target` accuracy (None if never)."""
    for point in curve:
        if point.accuracy >= target:
            return point.n_labels
    return None


# ---------------------------------------------------------------------------------------------
# The sample stage: compare strategies in simulation, buy the labels that go to training.


@dataclass(frozen=True)
class SamplingInputs:
    pool: pd.DataFrame
    features: np.ndarray  # standardised pool embeddings, row i = pool row i
    eval_labels: np.ndarray
    eval_features: np.ndarray


def load_inputs(cfg: SampleConfig) -> SamplingInputs:
    """The pool, the evaluation split and their cached embeddings (standardised on the pool)."""
    frames, embeddings = [], []
    for path in (cfg.pool_data, cfg.eval_data):
        if not path.is_file():
            raise DataError(f"{path}: split not found; run `dvc repro prepare` first")
        frame = pd.read_parquet(path)
        cache = cfg.embeddings_dir / f"{path.stem}.npz"
        ids, matrix = read_embeddings(cache)
        if ids != frame["id"].astype(str).tolist():
            raise DataError(
                f"{cache}: cached embeddings are not of the rows of {path} (stale cache): "
                "run `dvc repro embed`"
            )
        frames.append(frame)
        embeddings.append(matrix)
    features, eval_features = standardize(*embeddings)
    return SamplingInputs(
        frames[0], features, frames[1]["label"].astype(str).to_numpy(), eval_features
    )


def full_pool_accuracy(inputs: SamplingInputs, inverse_l2: float) -> float:
    """Proxy accuracy with every pool label: the ceiling the annotation curves approach."""
    truth = inputs.pool["label"].astype(str).to_numpy()
    proxy = fit_proxy(inputs.features, truth, inverse_l2)
    return float((proxy.predict(inputs.eval_features) == inputs.eval_labels).mean())


def summarize_curves(
    rounds: pd.DataFrame, full_accuracy: float, share: float = 0.98
) -> dict[str, dict[str, float | None]]:
    """Per strategy: final accuracy (mean, sd over seeds) and labels to reach `share` of the
    full-pool accuracy (mean over seeds; None if a seed never gets there), ÷ random's."""
    target = share * full_accuracy
    summary: dict[str, dict[str, float | None]] = {}
    for strategy, group in rounds.groupby("strategy", sort=False):
        finals = group.sort_values("n_labels").groupby("seed")["accuracy"].last()
        needed = []
        for _, seed_curve in group.groupby("seed"):
            points = [
                RoundResult(int(n), float(a), 0.0)
                for n, a in zip(seed_curve["n_labels"], seed_curve["accuracy"], strict=True)
            ]
            needed.append(labels_to_reach(sorted(points, key=lambda p: p.n_labels), target))
        summary[str(strategy)] = {
            "final_accuracy_mean": float(finals.mean()),
            "final_accuracy_sd": float(finals.std(ddof=0)),
            "labels_to_target_mean": None if None in needed else float(np.mean(needed)),
            "seconds_per_round": float(group["seconds"].mean()),
        }
    baseline = summary.get("random", {}).get("labels_to_target_mean")
    for entry in summary.values():
        mine = entry["labels_to_target_mean"]
        entry["labels_vs_random"] = mine / baseline if mine is not None and baseline else None
    return summary


def simulate(
    inputs: SamplingInputs,
    cfg: SampleConfig,
    strategy: str,
    seed: int,
    start: pd.DataFrame | None = None,
    start_positions: Sequence[int] = (),
) -> SamplingRun:
    """An annotation run with the pool's own labels answering: from the cold start, or from
    the labels in `start` (id, label, round; at pool `start_positions`) up to the budget."""
    truth = inputs.pool["label"].astype(str).to_numpy()
    return run_rounds(
        inputs.features,
        lambda positions: truth[positions],
        inputs.eval_features,
        inputs.eval_labels,
        strategy=strategy,
        budget=max(cfg.budget, len(start_positions)),
        batch_size=cfg.batch_size,
        initial_size=cfg.initial_size,
        cold_start_method=cfg.cold_start,
        inverse_l2=cfg.inverse_l2,
        seed=seed,
        start_positions=start_positions,
        start_labels=[] if start is None else start["label"].astype(str).tolist(),
        start_rounds=[] if start is None else start["round"].astype(int).tolist(),
    )


def curve_table(run: SamplingRun) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "strategy": run.strategy,
            "seed": run.seed,
            "n_labels": [p.n_labels for p in run.curve],
            "accuracy": [p.accuracy for p in run.curve],
            "seconds": [p.seconds for p in run.curve],
        }
    )


def mean_curves(rounds: pd.DataFrame) -> pd.DataFrame:
    """Wide table for `dvc plots`: n_labels, then mean accuracy over seeds per strategy."""
    wide = rounds.pivot_table(
        index="n_labels", columns="strategy", values="accuracy", aggfunc="mean"
    )
    wide.columns.name = None
    return wide.reset_index()


def buy_labels(
    inputs: SamplingInputs, annotations: pd.DataFrame, cfg: SampleConfig
) -> tuple[pd.DataFrame, SamplingRun]:
    """The labeled set for training, resuming from the imported (human) annotations.

    simulated: buy rounds of `cfg.strategy` until the budget, the pool's labels answering;
    human: the imported labels as they are (the next batch comes from `frugal annotate export`).
    """
    pool = inputs.pool
    start = annotated_positions(annotations, pool["id"].astype(str).tolist(), cfg.annotations)
    check_label_set(annotations, set(pool["label"].astype(str)), cfg.annotations)
    if cfg.annotator == "human":
        if not start:
            raise DataError(
                f"sample.annotator is 'human' but {cfg.annotations} holds no labels yet: run "
                "`frugal annotate export`, label the batch, then `frugal annotate import FILE`"
            )
        run = replay_rounds(
            inputs.features, annotations, start, inputs.eval_features, inputs.eval_labels, cfg
        )
    else:
        run = simulate(inputs, cfg, cfg.strategy, cfg.seed, annotations, start)
    n_human = len(start)
    labeled = pd.DataFrame(
        {
            "id": pool["id"].to_numpy()[run.positions],
            "text": pool["text"].to_numpy()[run.positions],
            "label": run.labels,
            "round": run.rounds,
            "source": ["human"] * n_human + ["simulated"] * (len(run.positions) - n_human),
        }
    )
    return labeled, run


def annotated_positions(
    annotations: pd.DataFrame, pool_ids: Sequence[str], where: object
) -> list[int]:
    """Pool positions of the annotated ids; an id missing from the pool is an error."""
    position_of = {pid: i for i, pid in enumerate(pool_ids)}
    unknown = sorted(set(annotations["id"].astype(str)) - set(position_of))
    if unknown:
        raise DataError(
            f"{where}: {len(unknown)} annotated ids are not in the pool "
            f"({', '.join(unknown[:5])}{', ...' if len(unknown) > 5 else ''}): the pool changed "
            "since they were imported; restore the data version they belong to"
        )
    return [position_of[pid] for pid in annotations["id"].astype(str)]


def check_label_set(annotations: pd.DataFrame, labels: set[str], where: object) -> None:
    """Stored human labels must all be classes of the current data: a label set that changed
    between runs (a class renamed or dropped) is an error, never a silent extra class."""
    gone = sorted(set(annotations["label"].astype(str)) - labels)
    if gone:
        raise DataError(
            f"{where}: stored label(s) {gone} are not classes of the current data "
            f"({sorted(labels)}): the label set changed since they were imported. Restore the "
            "data version they belong to, or relabel those rows in the store"
        )


def replay_rounds(
    features: np.ndarray,
    annotations: pd.DataFrame,
    positions: list[int],
    eval_features: np.ndarray,
    eval_labels: np.ndarray,
    cfg: SampleConfig,
) -> SamplingRun:
    """The curve of imported labels: the proxy after each imported round."""
    run = SamplingRun("human", cfg.seed, positions, annotations["label"].astype(str).tolist())
    run.rounds = annotations["round"].astype(int).tolist()
    rounds = np.asarray(run.rounds)
    labels = np.asarray(run.labels)
    for round_no in sorted(set(run.rounds)):
        started = time.perf_counter()
        upto = rounds <= round_no
        proxy = fit_proxy(features[np.asarray(positions)[upto]], labels[upto], cfg.inverse_l2)
        accuracy = float((proxy.predict(eval_features) == eval_labels).mean())
        run.curve.append(RoundResult(int(upto.sum()), accuracy, time.perf_counter() - started))
    return run


def next_batch(
    features: np.ndarray,
    annotations: pd.DataFrame,
    pool_ids: Sequence[str],
    cfg: SampleConfig,
    size: int,
) -> np.ndarray:
    """Pool positions to send to annotators next: the cold start when nothing is labeled yet,
    otherwise `cfg.strategy` given the imported labels."""
    done = annotated_positions(annotations, pool_ids, cfg.annotations)
    labeled = np.zeros(len(features), dtype=bool)
    labeled[done] = True
    # A different stream per round, so re-exporting a round gives the same batch.
    rng = np.random.default_rng([cfg.seed, int(annotations["round"].max()) + 1 if done else 0])
    if not done:
        return cold_start(features, min(size, len(features)), cfg.cold_start, rng)
    proxy = fit_proxy(features[done], annotations["label"].astype(str).to_numpy(), cfg.inverse_l2)
    return select_batch(cfg.strategy, proxy, features, labeled, size, rng)
