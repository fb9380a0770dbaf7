"""Every JSON report a stage writes and another stage reads, named once: its path (from
params.yaml), the stage that makes it, and its schema.

A consumer reads a typed object (`catalog.METRICS.read(params)["base"].dev_accuracy`), never a
dict by string keys, so a renamed key fails here, at the read, with the file and the key, not
three stages later. A producer writes through the same entry, so what is written is what the
schema says. Field order is the order producers wrote, so a report written through its schema
is byte-identical to one written as a dict.
"""

from __future__ import annotations

import json
from collections.abc import Callable, ItemsView, Iterator, ValuesView
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, RootModel, ValidationError

from frugal.config import Params
from frugal.errors import DataError
from frugal.files import write_json

S_ = TypeVar("S_", bound=BaseModel)


class _Report(BaseModel):
    """A part of a report: every key known (a new or misspelt key is an error), frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class _Open(BaseModel):
    """A part whose keys depend on a recipe or a method: the common keys are checked, the
    recipe's own figures kept as written."""

    model_config = ConfigDict(extra="allow", frozen=True)


class _PerModel(RootModel[dict[str, S_]]):
    """A report keyed by model name (the base model first), read as a mapping."""

    model_config = ConfigDict(frozen=True)

    def __getitem__(self, name: str) -> S_:
        return self.root[name]

    def __iter__(self) -> Iterator[str]:  # type: ignore[override]
        return iter(self.root)

    def __len__(self) -> int:
        return len(self.root)

    def __contains__(self, name: object) -> bool:
        return name in self.root

    def items(self) -> ItemsView[str, S_]:
        return self.root.items()

    def values(self) -> ValuesView[S_]:
        return self.root.values()


# ---- evaluate: reports/metrics.json and reports/classification_report.json ----


class Difference95(_Report):
    """A model's accuracy minus the base model's on the same examples, with a paired bootstrap
    95% interval."""

    difference: float
    ci95_low: float
    ci95_high: float
    examples: int


class Difference90(_Report):
    """The same with a 90% interval (the one-sided 95% bound the champion rule tests)."""

    difference: float
    ci90_low: float
    ci90_high: float
    examples: int


class ModelMetrics(_Report):
    """One model in reports/metrics.json (dvc metrics): test figures, the dev and selection
    accuracies the champion is chosen on, the profile stage's figures beside them."""

    accuracy: float
    macro_f1: float
    ece: float
    n_test: int
    size_mb: float
    f1: dict[str, float]
    accuracy_vs_baseline: Difference95
    accuracy_vs_baseline_ci90: Difference90
    dev_accuracy: float
    dev_accuracy_vs_baseline: Difference95
    selection_accuracy: float
    selection_accuracy_vs_baseline: Difference90
    measured_latency_ms_p50: float
    measured_latency_ms_p95: float
    measured_weights_bytes: int
    modeled_uj_per_utterance: dict[str, dict[str, float]]  # profile → workload → µJ (modeled)
    champion: bool
    pareto_front: dict[str, bool]  # workload → on the front


class Metrics(_PerModel[ModelMetrics]):
    """reports/metrics.json: model name → its metrics, the base model first."""

    def champion(self) -> str | None:
        """The model the rule chose (None: no model met it)."""
        return next((name for name, m in self.items() if m.champion), None)


class ClassReport(_Report):
    precision: float
    recall: float
    f1: float
    support: int


class ModelClassification(_Report):
    """One model in reports/classification_report.json: the per-class report and confusion."""

    accuracy: float
    macro_f1: float
    ece: float
    n_test: int
    per_class: dict[str, ClassReport]
    confusion: list[list[int]]
    size_mb: float
    accuracy_vs_baseline: Difference95
    accuracy_vs_baseline_ci90: Difference90
    dev_accuracy: float
    dev_accuracy_vs_baseline: Difference95
    selection_accuracy: float
    selection_accuracy_vs_baseline: Difference90


class Classification(_PerModel[ModelClassification]):
    """reports/classification_report.json: model name → per-class report and confusion."""


# ---- profile: reports/profile.json ----


class Modeled(_Report):
    """Modeled energy (not measured) of one model over the workload texts."""

    texts: int
    requests: dict[str, int]  # workload → encoder invocations for `texts`
    activation_sram_bytes: dict[str, float]
    uj_per_utterance: dict[str, dict[str, float]]  # profile → workload → µJ
    dram_share: dict[str, dict[str, float]]  # profile → workload → DRAM's share of the energy


class Measured(_Report):
    """Measured on this machine's CPU, in a fresh process, with the configured threads."""

    threads: int
    latency_requests: int
    latency_ms_p50: float
    latency_ms_p95: float
    throughput_batch: int
    throughput_texts: int
    throughput_per_s: float
    cpu_ms_per_text: float
    peak_rss_mb: float
    runtime_rss_mb: float
    weights_bytes: int
    rapl_joules_per_text: float | None
    rapl: str


class ModelProfile(_Report):
    modeled: Modeled
    measured: Measured


class Profile(_PerModel[ModelProfile]):
    """reports/profile.json: model name → modeled energy and measured CPU figures."""


# ---- forecast: reports/forecast.json ----


class Forecast90(_Report):
    n_labels: int
    score: float
    low: float
    high: float


class MaxScore(_Report):
    score: float
    low: float
    high: float


class LabelsForTarget(_Report):
    target: float
    n_labels: int | None  # None: out of reach
    low: int | None
    high: int | None


class AtLabelsBought(_Report):
    n_labels: int
    forecast: float
    low: float
    high: float
    measured: float


class ForecastPoints(_Report):
    order: str
    fractions: list[float]
    seeds: list[int]


class FittedCurve(_Report):
    """The fitted curve itself (`CalibratedForecast.fitted`): readers forecast from it."""

    method: str
    n_scale: float
    last: float
    n_first: float
    params: dict[str, list[float]]


class ForecastReport(_Report):
    """reports/forecast.json: the forecast at each budget, the maximum reachable score and the
    labels a target needs, each with its 90% interval; how the curve was fitted."""

    forecasts: list[Forecast90]
    max_score: MaxScore
    method: str
    calibration: _Open  # the conformal bands of the chosen method, or the bootstrap's note
    link: _Open | None = None  # only for a forecast linked to a proxy curve
    labels_for_target: LabelsForTarget | None = None  # only with forecast.target
    pool_size: int
    labels_measured: int
    at_labels_bought: AtLabelsBought
    points: ForecastPoints
    curve: FittedCurve | None = None  # the default method's fit; None for "select"


# ---- sample: reports/sample.json ----


class StrategySummary(_Report):
    final_accuracy_mean: float
    final_accuracy_sd: float
    labels_to_target_mean: float | None
    seconds_per_round: float
    labels_vs_random: float | None


class SampleReport(_Report):
    """reports/sample.json: the labels bought, and how each compared strategy did on dev."""

    annotator: str
    strategy: str
    labels: int
    labels_by_source: dict[str, int]
    classes_missing: list[str]
    proxy_accuracy: float
    full_pool_proxy_accuracy: float | None
    strategies: dict[str, StrategySummary]
    best_on_dev: str | None


# ---- train: reports/train.json ----


class TrainStep(_Report):
    step: int
    train_loss: float
    dev_accuracy: float


class TrainReport(_Report):
    """reports/train.json: the base model's fine-tuning, step by step."""

    n_labeled: int
    best_dev_accuracy: float
    best_step: int
    steps: int
    planned_steps: int
    train_seconds: float
    history: list[TrainStep]


# ---- compress: reports/compress.json ----


class HeadSensitivity(_Report):
    layer: int
    head: int
    fisher_loss: float


class VariantReport(_Open):
    """One variant: how it was built and on which profile; each recipe adds its own figures."""

    how: str
    profile: str


class CompressReport(_Report):
    """reports/compress.json: the sensitivity analysis and every variant's plan."""

    reference_dev_accuracy: float
    sensitivity_agreement: dict[str, float]
    least_sensitive_heads: list[HeadSensitivity]
    variants: dict[str, VariantReport]


# ---- continual: reports/continual.json ----


class StepRow(_Report):
    """One method after one domain step (test accuracies; dev is what ships are chosen on)."""

    method: str
    step: int
    n_classes: int
    average_accuracy: float
    dev_average_accuracy: float
    mean_forgetting: float
    seconds: float
    train_examples: int
    memory_examples: int
    memory_bytes: int
    setup_seconds: float
    per_class: dict[str, float]
    forgetting: dict[str, float]


class Shipped(_Report):
    method: str
    rule: str
    why: str


class MethodSummary(_Report):
    """A method after the last step; the comparisons with full retraining only when it ran."""

    final_average_accuracy: float
    final_dev_average_accuracy: float
    final_mean_forgetting: float
    update_seconds: float
    memory_examples: int  # training texts kept (0: statistics only)
    memory_bytes: int | None = None
    gap_to_full_retrain_pt: float | None = None
    time_vs_full_retrain: float | None = None
    max_update_time_vs_full_retrain: float | None = None


class AblationRow(_Report):
    """What one part adds over the method it extends, in points."""

    method: str
    adds: str
    over: str
    dev_pt: float
    test_pt: float


class ContinualReport(_Report):
    """reports/continual.json: every method through every domain step, and what ships."""

    steps: list[list[str]]
    memory_fraction: float
    step_examples: list[int]
    summary: dict[str, MethodSummary]
    ablation: list[AblationRow]
    shipped: Shipped
    records: list[StepRow]


# ---- the entries ----

S = TypeVar("S", bound=BaseModel)


@dataclass(frozen=True)
class Report(Generic[S]):
    """A JSON report: where params put it, the stage that writes it, and its schema."""

    name: str
    stage: str  # `dvc repro <stage>` writes it
    schema: type[S]
    where: Callable[[Params], Path]

    def path(self, params: Params) -> Path:
        return self.where(params)

    def read(self, params: Params) -> S:
        return self.read_file(self.path(params))

    def read_file(self, path: Path) -> S:
        """The report at `path`, checked against its schema: a missing file or a key that
        means something else is a DataError naming the file, the key and the stage to rerun."""
        if not path.is_file():
            raise DataError(f"{path}: not found; run `dvc repro {self.stage}` first")
        try:
            return self.schema.model_validate_json(path.read_bytes())
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}"
                for e in err.errors()[:5]
            )
            raise DataError(
                f"{path}: not a {self.name} report as `{self.stage}` writes it ({problems}); "
                f"rerun `dvc repro {self.stage}`"
            ) from None

    def write(self, params: Params, report: S | dict) -> Path:
        """Write at its path, atomically, as the producer built it (unset optional keys left
        out); a producer's dict is checked against the schema first (`check`)."""
        checked = report if isinstance(report, self.schema) else self.check(report)
        return write_json(self.dump(checked), self.path(params))

    def dump(self, report: S) -> object:
        return report.model_dump(mode="json", exclude_unset=True)

    def check(self, data: object) -> S:
        """`data` (a producer's dict) as this report: a key its readers do not know fails here."""
        return self.schema.model_validate(data)


METRICS = Report("metrics", "evaluate", Metrics, lambda p: p.evaluate.output)
CLASSIFICATION = Report("classification", "evaluate", Classification, lambda p: p.evaluate.report)
PROFILE = Report("profile", "profile", Profile, lambda p: p.profile.output)
FORECAST = Report("forecast", "forecast", ForecastReport, lambda p: p.forecast.output)
SAMPLE = Report("sample", "sample", SampleReport, lambda p: p.sample.summary)
TRAIN = Report("train", "train", TrainReport, lambda p: p.train.history)
COMPRESS = Report("compress", "compress", CompressReport, lambda p: p.compress.report)
CONTINUAL = Report("continual", "continual", ContinualReport, lambda p: p.continual.report)

REPORTS: tuple[Report, ...] = (METRICS, CLASSIFICATION, PROFILE, FORECAST, SAMPLE, TRAIN,
                               COMPRESS, CONTINUAL)  # fmt: skip


def json_text(report: Report, value: BaseModel) -> str:
    """What `write` puts in the file (for comparisons without writing)."""
    return json.dumps(report.dump(value), indent=2) + "\n"
