"""The table of stages: every stage of the pipeline, in order, with what it reads and writes.

One row per stage. `python -m flows <stage>` (what each DVC stage runs) and the
`frugal-pipeline` flow read it to run the stage's module `frugal.stages.<name>` through the
adapter; `python -m orchestration.dvc_yaml` writes dvc.yaml from it whole (each stage's code
deps are its command's import closure). A new stage is its module, its params section and a
row here.

Paths are DVC's templates of params.yaml's values (`${train.output_dir}` is params.yaml's
train.output_dir), so each data path is written once, in params.yaml. A row's change is a
change of its stage's entry in the generated dvc.yaml, which DVC sees: this file is no code
dep of the stages (it does not change what a stage computes).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from frugal.stages import Context, Outcome

if TYPE_CHECKING:
    from frugal.config import Params

# An out, metric or plot: a path, or a path with DVC's options for it (e.g. cache: false).
Entry = str | tuple[str, dict[str, Any]]

SOURCE = "source"  # dvc.yaml's first stage: the input's fingerprint, no row (reads no data)
SOURCE_OUT = "data/source.json"  # its out, the one path no stage has as a parameter


def kept(path: str, **options: Any) -> Entry:
    """An output DVC keeps in git rather than its cache (reports, plots, small tables)."""
    return (path, {"cache": False, **options})


@dataclass(frozen=True)
class Stage:
    """A row: the stage's name (dvc.yaml's stage, the Prefect flow, the module
    `frugal.stages.<name>`), what it is (dvc.yaml's comment), whether it records to MLflow
    (under the execution's parent run), and its data deps, params and outputs."""

    name: str
    about: str = ""
    tracked: bool = True
    deps: tuple[str, ...] = ()
    params: tuple[str, ...] = ()
    outs: tuple[Entry, ...] = ()
    metrics: tuple[Entry, ...] = ()
    plots: tuple[Entry, ...] = ()

    @property
    def module(self) -> str:
        return f"frugal.stages.{self.name}"

    @property
    def flow_name(self) -> str:
        return self.name.replace("_", "-")

    @property
    def command(self) -> str:
        return f"python -m flows {self.name}"

    def describe(self) -> str | None:
        """The stage module's docstring (its flow's description)."""
        return importlib.import_module(self.module).__doc__

    def run(self, params: Params, ctx: Context | None = None) -> Outcome:
        """Run the stage in this process (the adapter runs it in a Prefect flow run)."""
        return importlib.import_module(self.module).run(params, ctx or Context())


STAGES = (
    Stage(
        "ingest",
        tracked=False,
        deps=("${source_fingerprint}",),
        params=("ingest",),
        outs=("${ingest.output}",),
    ),
    Stage(
        "prepare",
        tracked=False,
        deps=("${ingest.output}",),
        params=("prepare",),
        outs=(
            "${prepare.output_dir}/pool.parquet",
            "${prepare.output_dir}/dev.parquet",
            "${prepare.output_dir}/test.parquet",
            "${prepare.output_dir}/selection.parquet",
        ),
    ),
    Stage(
        "embed",
        about="Encoder embeddings of every split, computed once: the sampling proxy's features.",
        tracked=False,
        deps=(  # the splits frugal.data.dataset.SPLITS names
            "${embed.splits_dir}/pool.parquet",
            "${embed.splits_dir}/dev.parquet",
            "${embed.splits_dir}/test.parquet",
        ),
        params=("embed",),
        outs=("${embed.output_dir}",),
    ),
    Stage(
        "sample",
        about="Simulated annotation curves per strategy × seed; then buy the training labels, "
        "resuming from labels imported with `frugal annotate import` (sample.annotations).",
        deps=(
            "${sample.pool_data}",
            "${sample.eval_data}",
            "${sample.embeddings_dir}",
            "${sample.annotations}",
        ),
        params=("sample",),
        outs=("${sample.output}",),
        metrics=(kept("${sample.summary}"),),
        plots=(
            kept(
                "${sample.curve}",
                x="n_labels",
                title="proxy accuracy vs labels bought (mean over seeds)",
            ),
            kept("${sample.rounds}"),
            kept("${sample.plot}"),
        ),
    ),
    Stage(
        "train",
        deps=("${train.labeled_data}", "${train.dev_data}"),
        params=("train",),
        outs=("${train.output_dir}",),
        metrics=(kept("${train.history}"),),
    ),
    Stage(
        "learning_curve",
        about="The fine-tuned model's accuracy on shares of the bought labels (one fine-tuning "
        "per point × seed: the expensive half of forecasting; the whole set's point at "
        "train.seed is train's model).",
        tracked=False,
        deps=(
            "${learning_curve.labeled_data}",
            "${train.output_dir}",
            "${train.history}",
            "${train.dev_data}",
            "${learning_curve.eval_data}",
        ),
        params=("learning_curve", "train"),
        plots=(kept("${learning_curve.points}", x="n_labels", y="score"),),
    ),
    Stage(
        "forecast",
        about="Fit the learning curves; forecast larger budgets, the maximum and a target "
        "(seconds).",
        deps=(
            "${learning_curve.points}",
            "${forecast.pool_data}",
            "frugal/forecast/calibration.json",
        ),
        params=(
            "forecast",
            "learning_curve.order",
            "learning_curve.fractions",
            "learning_curve.seeds",
        ),
        metrics=(kept("${forecast.output}"),),
        plots=(kept("${forecast.plot}"),),
    ),
    Stage(
        "compress",
        about="Sensitivity per tensor (Fisher, measured KL / loss / accuracy), energy-guided "
        "bit plans (MILP with SRAM placement), distillation-based QAT; every variant saved "
        "packed.",
        deps=(
            "${compress.latency_table}",
            "${train.output_dir}",
            "${compress.unlabeled_data}",
            "${compress.labeled_data}",
            "${compress.dev_data}",
        ),
        params=("compress", "profile.profiles"),
        outs=("${compress.output_dir}",),
        metrics=(kept("${compress.report}"),),
        plots=(
            kept("${compress.sensitivity_report}"),
            kept("${compress.candidates_report}", x="size_bytes", y="dev_accuracy"),
            kept("${compress.subgroup_report}"),
        ),
    ),
    Stage(
        "profile",
        about="Modeled energy per utterance (every device profile × batch / streaming) from "
        "measured invocation counts, and measured CPU latency, throughput, memory, RAPL where "
        "readable.",
        deps=("${train.output_dir}", "${compress.output_dir}", "${profile.workload_data}"),
        params=("profile", "compress.variants"),
        outs=(kept("${profile.tables_dir}"),),
        metrics=(kept("${profile.output}"),),
        plots=(kept("${profile.plots_dir}"),),
    ),
    Stage(
        "evaluate",
        deps=(
            "${train.output_dir}",
            "${compress.output_dir}",
            "${evaluate.test_data}",
            "${evaluate.dev_data}",
            "${evaluate.selection_data}",
            "${evaluate.profile_report}",
        ),
        params=("evaluate", "compress.variants"),
        outs=(kept("${evaluate.report}"),),
        metrics=(kept("${evaluate.output}"),),
        plots=(
            kept("${evaluate.predictions}", template="confusion", x="actual", y="predicted"),
            kept("${evaluate.plots_dir}"),
            kept("${evaluate.pareto_plot}"),
        ),
    ),
    Stage(
        "continual",
        about="New domains arrive: by default the user's continual.update_source file, applied "
        "to train's model (none: train's model stays current); in the benchmark, TREC's coarse "
        "classes one step at a time. Every method updates its model; the method best on dev "
        "within the memory and time budget ships (models/continual, the registered model's "
        "`current`).",
        deps=(
            "${continual.base_model}",
            "${continual.old_data}",
            "${continual.pool_data}",
            "${continual.test_data}",
            "${continual.dev_data}",
            "${continual.updates_dir}",
        ),
        params=("continual",),
        outs=("${continual.data_dir}", "${continual.output_dir}"),
        metrics=(kept("${continual.report}"),),
        plots=(
            kept(
                "${continual.steps_report}",
                x="step",
                y="average_accuracy",
                title="average accuracy over the classes seen so far, per method",
            ),
            kept("${continual.plot}"),
        ),
    ),
    Stage(
        "report",
        about="Every figure of the run on one self-contained page, also logged to the MLflow "
        "parent run.",
        deps=(
            "${evaluate.output}",
            "${forecast.output}",
            "${sample.summary}",
            "${continual.report}",
            "${sample.plot}",
            "${forecast.plot}",
            "${evaluate.pareto_plot}",
            "${evaluate.plots_dir}",
            "${profile.plots_dir}",
            "${continual.plot}",
        ),
        params=("report", "evaluate.accuracy_budget", "evaluate.champion_profile"),
        outs=(kept("${report.output}"),),
    ),
)
NAMES = (SOURCE, *(s.name for s in STAGES))  # dvc.yaml's stages, in order


def stage(name: str) -> Stage:
    """The row named `name`."""
    for row in STAGES:
        if row.name == name:
            return row
    raise KeyError(name)
