"""Schema of params.yaml: one strict, frozen section per stage.

A typo in a key or a value out of range is an error that names the key and the file, never a
silent default.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    ValidationError,
    field_validator,
    model_validator,
)

from frugal.errors import ParamsError

DEFAULT_PARAMS = Path("params.yaml")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# What ingest does with one text (compared case- and spacing-blind) labeled differently.
ConflictPolicy = Literal["keep", "drop", "majority"]


class IngestConfig(_Section):
    source: str
    text_column: str
    label_column: str
    trec_labels: Literal["coarse", "fine"]
    conflicts: ConflictPolicy
    max_rows: int | None = Field(ge=10)
    seed: int
    output: Path


class PrepareConfig(_Section):
    dev_fraction: float = Field(gt=0, lt=0.5)
    test_fraction: float = Field(gt=0, lt=0.5)
    selection_share: float = Field(ge=0, lt=1)  # of dev, set apart: where the champion is chosen
    seed: int
    output_dir: Path


# Tokens a model reads per text: a number, or "auto" (`frugal.model.modeling.fitted_max_length`).
MaxLength = Annotated[int, Field(ge=8, le=512)] | Literal["auto"]

Strategy = Literal[
    "random", "least_confidence", "margin", "entropy", "kcenter", "fisher", "badge", "cal"
]


class EmbedConfig(_Section):
    splits_dir: Path
    max_length: MaxLength
    batch_size: int = Field(ge=1)
    threads: int = Field(ge=1)
    output_dir: Path


class SampleConfig(_Section):
    pool_data: Path
    eval_data: Path
    embeddings_dir: Path
    annotator: Literal["simulated", "human"]
    annotations: Path
    export_dir: Path
    strategy: Strategy
    cold_start: Literal["kmeans", "random"]
    initial_size: int = Field(ge=2)
    batch_size: int = Field(ge=1)
    budget: int = Field(ge=2)
    inverse_l2: float = Field(gt=0)
    seed: int
    compare: list[Strategy]
    seeds: list[int] = Field(min_length=1)
    output: Path
    curve: Path
    rounds: Path
    summary: Path
    plot: Path

    @model_validator(mode="after")
    def _initial_within_budget(self) -> SampleConfig:
        if self.initial_size > self.budget:
            raise ValueError("sample.initial_size must be <= sample.budget")
        return self


class LearningCurveConfig(_Section):
    labeled_data: Path
    eval_data: Path
    order: Literal["rounds", "random"]
    fractions: list[float] = Field(min_length=3)
    seeds: list[int] = Field(min_length=1)
    points: Path

    @model_validator(mode="after")
    def _fractions_in_range(self) -> LearningCurveConfig:
        if any(not 0 < f <= 1 for f in self.fractions) or len(set(self.fractions)) < 3:
            raise ValueError("learning_curve.fractions needs >= 3 distinct values in (0, 1]")
        return self


class ForecastConfig(_Section):
    pool_data: Path
    at: list[int] = Field(min_length=1)
    target: float | None = Field(gt=0, lt=1)
    output: Path
    plot: Path

    @model_validator(mode="after")
    def _budgets_positive(self) -> ForecastConfig:
        if any(n < 1 for n in self.at):
            raise ValueError("forecast.at must list positive label counts")
        return self


class TrainConfig(_Section):
    labeled_data: Path
    dev_data: Path
    max_length: MaxLength
    batch_size: int = Field(ge=1)
    epochs: int = Field(ge=1)
    min_steps: int = Field(ge=0)
    max_steps: int | None = Field(ge=1)
    learning_rate: float = Field(gt=0, lt=1)
    weight_decay: float = Field(ge=0)
    warmup_fraction: float = Field(ge=0, lt=1)
    early_stopping_patience: int = Field(ge=1)
    eval_every_steps: int = Field(ge=0)
    threads: int = Field(ge=1)
    seed: int
    output_dir: Path
    history: Path


class EvaluateConfig(_Section):
    bootstrap_resamples: int = Field(ge=100)
    seed: int
    test_data: Path
    dev_data: Path  # compression plans are scored here (reported beside the others)
    selection_data: Path  # the champion is chosen here; test is only reported
    profile_report: Path  # profile.output: the profile stage's figures
    batch_size: int = Field(ge=1)
    threads: int = Field(ge=1)
    output: Path
    report: Path
    predictions: Path
    plots_dir: Path
    pareto_plot: Path
    accuracy_budget: float = Field(ge=0, le=1)  # champion: selection accuracy loss allowed
    champion_profile: str  # ... and the lowest modeled energy on this profile (mean of workloads)


class DeviceProfileConfig(_Section):
    sram_bytes: int = Field(ge=0)
    dram_pj_per_byte: float = Field(gt=0)
    sram_pj_per_byte: float = Field(gt=0)
    mac_pj: dict[int, float] = Field(min_length=1)  # operand bits -> pJ per multiply-accumulate
    source: str = Field(min_length=1)

    @model_validator(mode="after")
    def _sram_cheaper_than_dram(self) -> DeviceProfileConfig:
        if self.sram_pj_per_byte >= self.dram_pj_per_byte:
            raise ValueError("sram_pj_per_byte must be below dram_pj_per_byte")
        if any(bits < 1 or pj <= 0 for bits, pj in self.mac_pj.items()):
            raise ValueError("mac_pj maps bits >= 1 to a positive pJ per MAC")
        return self


class ProfileConfig(_Section):
    workload_data: Path
    max_requests: int = Field(ge=1)
    # streaming = one request per growing word prefix: utterances dictated word by word, not
    # documents; drop it for text that was never spoken
    workloads: list[Literal["batch", "streaming"]] = Field(min_length=1)
    profiles: dict[str, DeviceProfileConfig] = Field(min_length=1)
    latency_requests: int = Field(ge=1)
    throughput_batch: int = Field(ge=1)
    threads: int = Field(ge=1)
    output: Path
    tables_dir: Path
    plots_dir: Path


class QatConfig(_Section):
    steps: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    learning_rate: float = Field(gt=0)
    activation_bits: Literal[8]  # int8 activations: what MatMulNBits' int8 path executes
    label_weight: float = Field(ge=0)  # cross-entropy on the bought labels, beside distillation
    trials: int = Field(ge=1, le=8)  # energy_qat: plans distilled until one meets the budget
    seed: int


# The compressed variants `compress` can build (frugal/compress/variants.py has a recipe for each).
VARIANTS = (
    "ort_int8",
    "int8_ptq",
    "int4_weight_only",
    "size_guided",
    "energy_ptq",
    "energy_qat",
    "structured_pruning",
    "size_target",
)


CONTINUAL_METHODS = (  # frugal/continual/methods.py has a recipe for each
    "finetune",
    "ewc",
    "random_replay",
    "balanced_replay",
    "fisher_replay",
    "ccfi",
    "mixed_replay",
    "mixed_distill",
    "mixed_distill_head",
    "full_retrain",
    "stats_head",
)


class CompressConfig(_Section):
    output_dir: Path
    variants: list[Literal[VARIANTS]] = Field(min_length=1)
    unlabeled_data: Path
    labeled_data: Path
    dev_data: Path
    fisher_texts: int = Field(ge=1)
    sensitivity_texts: int = Field(ge=2)
    channel_group: int = Field(ge=1)
    ffn_keep: list[float] = Field(
        default_factory=list
    )  # shares of feed-forward channels a plan may keep
    workload_texts: int = Field(ge=1)
    bit_choices: list[Literal[0, 2, 4, 8]] = Field(min_length=1)
    block_size: Literal[16, 32, 64, 128, 256]  # weights per float32 scale (MatMulNBits blocks)
    sensitivity: Literal["kl", "fisher"]
    profile: str
    workloads: list[Literal["batch", "streaming"]] = Field(min_length=1)
    plan_budgets: int = Field(ge=1, le=30)
    latency_table: Path  # measured µs per (kernel width, shape, tokens): `frugal latency --measure`
    latency_budget: float | None = Field(
        default=None, gt=0
    )  # × all-int8's linear-layer time; null = none
    accuracy_budget: float = Field(ge=0, le=1)
    qat_accuracy_budget: float = Field(ge=0, le=1)
    structured_sparsity: float = Field(ge=0, lt=1)
    size_ratio: float = Field(gt=1)
    qat: QatConfig
    threads: int = Field(ge=1)
    report: Path
    sensitivity_report: Path
    subgroup_report: Path
    candidates_report: Path


class ContinualConfig(_Section):
    pool_data: Path
    dev_data: Path
    test_data: Path
    # none: no simulated domain steps, the update (update_source) applies to train's model
    steps: list[list[str]] | Literal["auto", "none"] = Field(min_length=2)
    base_model: Path  # train's model: where an update starts when steps is none
    old_data: Path  # train's labeled data: the old classes' data when steps is none
    methods: list[Literal[CONTINUAL_METHODS]] = Field(min_length=1)
    memory_fraction: float = Field(gt=0, le=1)
    typical_share: float = Field(ge=0, le=1)  # mixed memory: herded share, rest Fisher
    max_time_share: float = Field(gt=0)  # the shipped method's update time / full retraining's
    updates_dir: Path  # where update files live: the continual stage's DVC dependency
    update_source: Path | None = None  # new-domain rows arriving last (in updates_dir)
    update_text_column: str
    update_label_column: str
    update_conflicts: ConflictPolicy
    update_dev_fraction: float = Field(gt=0, lt=1)
    update_test_fraction: float = Field(gt=0, lt=1)
    # distillation's share of the loss, (1 − w)·CE + w·KD: auto = BiC's old ÷ all classes
    distill_weight: Annotated[float, Field(ge=0, lt=1)] | Literal["auto"]
    fisher_texts: int = Field(ge=1)
    ewc_lambda: float = Field(gt=0)
    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    learning_rate: float = Field(gt=0, lt=1)
    weight_decay: float = Field(ge=0)
    warmup_fraction: float = Field(ge=0, lt=1)
    max_length: MaxLength
    threads: int = Field(ge=1)
    seed: int
    data_dir: Path
    output_dir: Path
    registered_model: str
    report: Path
    steps_report: Path
    plot: Path

    @field_validator("steps")
    @classmethod
    def _steps_add_classes(
        cls, steps: list[list[str]] | Literal["auto", "none"]
    ) -> list[list[str]] | Literal["auto", "none"]:
        for index, classes in enumerate([] if isinstance(steps, str) else steps):
            if not classes:
                raise ValueError(f"step {index} adds no class; every step names its classes")
        return steps


AUTO_REGISTERED_MODEL = "auto"


class TrackingConfig(_Section):
    tracking_uri: str
    artifact_root: Path
    experiment: str
    # The MLflow registered model: auto = named after the data (`registered_model_name`), so
    # runs on two data sets never share a name, nor its `champion` alias; or a name of one's own.
    registered_model: str = Field(default=AUTO_REGISTERED_MODEL, min_length=1)


def registered_model_name(params: Params, continual: bool = False) -> str:
    """The MLflow registered model the pipeline's models are versions of (tracking.
    registered_model), or, with `continual`, the continual stage's (continual.registered_model).
    `auto` names it after the data: `frugal-trec-coarse` / `frugal-trec-fine` for the packaged
    TREC questions (ingest.trec_labels), `frugal-<file or folder name>` for one's own source
    (`data/My Intents.csv` → `frugal-my-intents`); the continual stage's auto is the pipeline's
    name and `-continual`. An explicit name is used as given."""
    if continual:
        name = params.continual.registered_model
        return (
            f"{registered_model_name(params)}-continual" if name == AUTO_REGISTERED_MODEL else name
        )
    if params.tracking.registered_model != AUTO_REGISTERED_MODEL:
        return params.tracking.registered_model
    ingest = params.ingest
    if (
        ingest.source == "trec"
    ):  # frugal.data.source.TREC_SOURCE (that module stays free of pydantic)
        return f"frugal-trec-{ingest.trec_labels}"
    slug = re.sub(r"[^a-z0-9]+", "-", Path(ingest.source).stem.lower()).strip("-")
    return f"frugal-{slug or 'data'}"


class ReportConfig(_Section):
    output: Path  # one self-contained HTML page per run, also logged to the MLflow parent run
    # The budget plan on the page (forecast.target, evaluate.champion_profile, the first of
    # profile.workloads): µJ per utterance at most, or None for no energy budget.
    plan_energy_budget_uj: PositiveFloat | None = None


class OrchestrationConfig(_Section):
    task_runner: Literal["threads", "dask"]
    workers: int = Field(ge=1, le=256)
    dask_address: str | None = None

    @model_validator(mode="after")
    def _address_needs_dask(self) -> OrchestrationConfig:
        if self.dask_address and self.task_runner != "dask":
            raise ValueError("orchestration.dask_address is only used with task_runner: dask")
        return self


# Sections renamed so that each stage's section has the stage's name: old -> new.
RENAMED_SECTIONS = {"energy": "profile"}


class Params(_Section):
    ingest: IngestConfig
    prepare: PrepareConfig
    embed: EmbedConfig
    sample: SampleConfig
    learning_curve: LearningCurveConfig
    forecast: ForecastConfig
    train: TrainConfig
    evaluate: EvaluateConfig
    compress: CompressConfig
    profile: ProfileConfig
    continual: ContinualConfig
    report: ReportConfig
    tracking: TrackingConfig
    orchestration: OrchestrationConfig

    def models(self) -> list[Path]:
        """Every model the profile and evaluate stages cover: the trained base model first (the
        baseline of every comparison), then each compressed variant."""
        return [self.train.output_dir] + [
            self.compress.output_dir / v for v in self.compress.variants
        ]

    @model_validator(mode="after")
    def _splits_leave_a_pool(self) -> Params:
        if self.prepare.dev_fraction + self.prepare.test_fraction >= 0.8:
            raise ValueError("prepare.dev_fraction + prepare.test_fraction must be < 0.8")
        return self

    @model_validator(mode="after")
    def _profiles_exist(self) -> Params:
        for key, name in (
            ("compress.profile", self.compress.profile),
            ("evaluate.champion_profile", self.evaluate.champion_profile),
        ):
            if name not in self.profile.profiles:
                raise ValueError(f"{key}: no device profile {name!r} in profile.profiles")
        if len(set(self.compress.variants)) != len(self.compress.variants):
            raise ValueError("compress.variants: a variant is listed twice")
        return self

    @model_validator(mode="after")
    def _planned_workloads_are_profiled(self) -> Params:
        unprofiled = [w for w in self.compress.workloads if w not in self.profile.workloads]
        if unprofiled:
            raise ValueError(
                f"compress.workloads plans for {unprofiled} but profile.workloads does not "
                f"profile them ({self.profile.workloads}); list the same workloads in both"
            )
        return self


def _format_errors(err: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid parameters"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            lines.append(f"  - {key}: unknown key (check its spelling; see frugal/config.py)")
        else:
            lines.append(f"  - {key}: {e['msg']} (got {e.get('input')!r})")
    return "\n".join(lines)


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_params(
    path: Path | str = DEFAULT_PARAMS, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """params.yaml as read, `overrides` (a nested dict, e.g. from a Prefect deployment
    parameter) merged over it: the mapping `parse_params` validates."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: parameters file not found (run from the repository root)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ParamsError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of stage sections at the top level")
    return _deep_merge(raw, overrides) if overrides else raw


def _refuse_old_names(raw: dict[str, Any], source: str) -> None:
    """A section or key under its old name is an error naming the new one (it would otherwise
    read as an unknown key, or worse, as a missing one)."""
    old = [f"{o} -> {n}" for o, n in RENAMED_SECTIONS.items() if o in raw]
    moved = sorted(set(raw.get("forecast") or {}) & set(LearningCurveConfig.model_fields))
    old += [f"forecast.{key} -> learning_curve.{key}" for key in moved]
    if old:
        raise ParamsError(
            f"{source}: renamed so that each stage's section has the stage's name: "
            f"{', '.join(old)}; rename {'them' if len(old) > 1 else 'it'} in the params file"
        )


def parse_params(
    raw: dict[str, Any], path: Path | str = "params", overrides: dict[str, Any] | None = None
) -> Params:
    """Validate a params mapping; errors name `path` (and the overrides merged into `raw`)."""
    source = f"{Path(path)} (with overrides {overrides})" if overrides else str(Path(path))
    _refuse_old_names(raw, source)
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        raise ParamsError(_format_errors(err, source)) from None


def load_params(
    path: Path | str = DEFAULT_PARAMS, overrides: dict[str, Any] | None = None
) -> Params:
    """Read and validate params.yaml, optionally overriding keys. Once per process: the
    entry points (`python -m flows <stage>`, the `frugal-pipeline` flow) hand the result down."""
    return parse_params(read_params(path, overrides), path, overrides)
