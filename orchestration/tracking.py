"""MLflow tracking through MlflowClient with explicit run ids.

Prefect runs tasks in worker threads while MLflow's active run is per thread, so nothing
here relies on the fluent "active run". One parent run per pipeline execution; one nested
run per model. Tasks log through a `Tracker` (the client and the parent run); the parent
run's life, from the first tracked stage to the last, is `pipeline_run`'s alone.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import ParamSpec, TypeVar

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from frugal.config import Params, TrackingConfig, registered_model_name
from frugal.errors import FrugalError
from frugal.hashing import data_md5, file_md5
from frugal.registry import (
    CHAMPION_ALIAS,
    CHAMPION_ELIGIBLE_TAG,
    CHAMPION_POOL_TAG,
    CHAMPION_UJ_TAG,
)
from orchestration.env import ROOT

P = ParamSpec("P")
R = TypeVar("R")

PIPELINE_KEY_TAG = "frugal.pipeline_key"
MODEL_HASH_TAG = "frugal.model_md5"
MODEL_DIR_TAG = "frugal.model_dir"
# What the logged pyfunc needs to load and predict (ONNX Runtime, no torch), pinned to the
# versions installed here (which requirements.lock pins).
PIP_REQUIREMENTS = [
    f"{name}=={importlib.metadata.version(name)}"
    for name in ("onnxruntime", "onnx", "tokenizers", "numpy", "pandas")
]
# The files a model serves from (frugal.model.runtime); the torch reference stays out of the model.
SERVED_FILES = ("model.onnx", "tokenizer.json", "frugal.json", "compression.json")


def client(cfg: TrackingConfig) -> MlflowClient:
    """A client on the configured store. For the embedded default (a relative SQLite path) the
    database lives under the repo root and the experiment's artifacts under `artifact_root`; a
    tracking server decides its own artifact store."""
    uri = cfg.tracking_uri
    local = uri.startswith("sqlite:///") and not uri.startswith("sqlite:////")
    if local:
        db = ROOT / uri.removeprefix("sqlite:///")
        db.parent.mkdir(parents=True, exist_ok=True)
        uri = f"sqlite:///{db}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    c = MlflowClient(uri, uri)
    if c.get_experiment_by_name(cfg.experiment) is None:
        artifacts = None
        if local:
            artifacts = (ROOT / cfg.artifact_root).resolve()
            artifacts.mkdir(parents=True, exist_ok=True)
        try:
            c.create_experiment(cfg.experiment, artifact_location=artifacts and artifacts.as_uri())
        except MlflowException as err:  # another pipeline created it a moment ago
            if err.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
    return c


def git_commit() -> tuple[str, bool]:
    """(commit sha or 'unknown', whether tracked files other than the pipeline's own outputs
    — dvc.lock and reports/, which `dvc repro` rewrites as it goes — have uncommitted changes)."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                [
                    "git",
                    "status",
                    "--porcelain",
                    "--untracked-files=no",
                    "--",
                    ".",
                    ":!dvc.lock",
                    ":!reports",
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
        return sha, dirty
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "unknown", True


def flat_params(params: Params) -> dict[str, str]:
    """params.yaml as MLflow params: {'train.epochs': '6', ...}."""
    flat: dict[str, str] = {}
    for section, values in params.model_dump(mode="json").items():
        for key, value in values.items():
            flat[f"{section}.{key}"] = (
                json.dumps(value) if isinstance(value, dict | list) else str(value)
            )
    return flat


def pipeline_key(params: Params, data_md5: str, execution_id: str | None = None) -> str:
    """Identity of a pipeline execution: code commit × params × raw data (× an execution id
    when one is known). The DVC stages of one `dvc repro` share it, so they log under one
    parent run."""
    sha, _ = git_commit()
    blob = json.dumps(
        {
            "commit": sha,
            "params": params.model_dump(mode="json"),
            "data": data_md5,
            "execution": execution_id,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _create_run(params: Params, run_name: str, tags: dict[str, str]) -> str:
    """A run tagged with the git commit and holding every parameter of params.yaml."""
    c = client(params.tracking)
    exp = c.get_experiment_by_name(params.tracking.experiment)
    sha, dirty = git_commit()
    run = c.create_run(
        exp.experiment_id,
        run_name=run_name,
        tags={"git.commit": sha, "git.dirty": str(dirty), **tags},
    )
    c.log_batch(
        run.info.run_id,
        params=[mlflow.entities.Param(k, v) for k, v in flat_params(params).items()],
    )
    return run.info.run_id


def parent_run(params: Params, data_md5: str, execution_id: str | None = None) -> str:
    """Id of this execution's parent run: found by its key, or created."""
    c = client(params.tracking)
    exp = c.get_experiment_by_name(params.tracking.experiment)
    key = pipeline_key(params, data_md5, execution_id)
    found = c.search_runs(
        [exp.experiment_id], f"tags.`{PIPELINE_KEY_TAG}` = '{key}'", max_results=1
    )
    if found:
        return found[0].info.run_id
    return _create_run(params, "pipeline", {PIPELINE_KEY_TAG: key, "dvc.md5.raw": data_md5})


def finish_run(cfg: TrackingConfig, run_id: str, status: str = "FINISHED") -> None:
    client(cfg).set_terminated(run_id, status)


def nested_run(params: Params, parent_run_id: str, run_name: str, tags: dict[str, str]) -> str:
    """A child run of the pipeline run (one per model), tagged with commit, data hashes and
    params."""
    return _create_run(params, run_name, {"mlflow.parentRunId": parent_run_id, **tags})


def find_model_run(cfg: TrackingConfig, model_dir: Path, model_md5: str) -> str | None:
    """Latest run that logged the model in `model_dir` whose weights hash to `model_md5` (the
    folder too: two variants can store identical weights)."""
    c = client(cfg)
    exp = c.get_experiment_by_name(cfg.experiment)
    found = c.search_runs(
        [exp.experiment_id],
        f"tags.`{MODEL_HASH_TAG}` = '{model_md5}' and tags.`{MODEL_DIR_TAG}` = '{model_dir}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return found[0].info.run_id if found else None


def model_run(params: Params, parent_run_id: str, model_dir: Path, stage: str) -> str:
    """The run that logged the model in `model_dir` (train or compress), or, for a model no run
    logged, a new nested run of this stage tagged with the model's folder and hash."""
    model_md5 = file_md5(Path(model_dir) / "model.onnx")
    return find_model_run(params.tracking, model_dir, model_md5) or nested_run(
        params,
        parent_run_id,
        run_name=f"{stage}-{Path(model_dir).name}",
        tags={
            "frugal.stage": stage,
            MODEL_HASH_TAG: model_md5,
            MODEL_DIR_TAG: str(model_dir),
        },
    )


def log_and_register_model(cfg: TrackingConfig, run_id: str, model_dir: Path, name: str) -> str:
    """Log the served files of a model folder (`SERVED_FILES`) in `run_id` as a pyfunc model
    run by ONNX Runtime (code: the `frugal` package; explicit pip requirements) and register
    it as a version of the registered model `name`; returns the new version."""
    import shutil
    import tempfile

    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    client(cfg)
    signature = ModelSignature(
        inputs=Schema([ColSpec("string", "text")]),
        outputs=Schema([ColSpec("string", "label"), ColSpec("double", "score")]),
    )
    # start_run/end_run happen in this one thread, so the thread-local active run is safe.
    with mlflow.start_run(run_id=run_id), tempfile.TemporaryDirectory() as temp:
        served = Path(temp) / Path(model_dir).name
        served.mkdir()
        for file_name in SERVED_FILES:
            if (Path(model_dir) / file_name).is_file():
                shutil.copy2(Path(model_dir) / file_name, served / file_name)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(ROOT / "orchestration" / "pyfunc_model.py"),
            artifacts={"model_dir": str(served)},
            code_paths=[str(ROOT / "frugal")],
            pip_requirements=PIP_REQUIREMENTS,
            signature=signature,
            registered_model_name=name,
        )
    return str(info.registered_model_version)


def run_versions(cfg: TrackingConfig, run_id: str, name: str) -> list[str]:
    """The versions of the registered model `name` that `run_id` logged, oldest first."""
    found = client(cfg).search_model_versions(f"run_id = '{run_id}'")
    return sorted((str(v.version) for v in found if v.name == name), key=int)


def set_alias(cfg: TrackingConfig, run_id: str, alias: str, name: str) -> str:
    """Point the registered model `name`'s `alias` at the latest version `run_id` logged."""
    versions = run_versions(cfg, run_id, name)
    if not versions:
        raise RuntimeError(f"run {run_id} registered no version of {name}")
    client(cfg).set_registered_model_alias(name, alias, versions[-1])
    return versions[-1]


def describe_versions(
    cfg: TrackingConfig, run_id: str, name: str, tags: dict[str, str], description: str
) -> list[str]:
    """Set `tags` and `description` on every version of `name` that `run_id` logged; returns
    those versions (none for a model no run registered)."""
    c = client(cfg)
    versions = run_versions(cfg, run_id, name)
    for version in versions:
        for key, value in tags.items():
            c.set_model_version_tag(name, version, key, value)
        c.update_model_version(name, version, description=description)
    return versions


class TrackingUnavailable(FrugalError):
    """The MLflow tracking store did not answer (after the client's bounded retries)."""


def _unreachable(err: BaseException) -> bool:
    """Whether `err` is the MLflow client giving up on the store: a REST call that failed
    after its retries (connection refused, timeouts, repeated 5xx answers of a server whose
    database is down)."""
    text = str(err)
    return isinstance(err, MlflowException) and (
        "API request to" in text
        and ("failed with" in text or "too many" in text)
        or err.error_code in ("TEMPORARILY_UNAVAILABLE", "INTERNAL_ERROR")
        and "sql" in text.lower()
    )


def _unavailable(why: str) -> TrackingUnavailable:
    return TrackingUnavailable(
        f"the MLflow tracking store at {mlflow.get_tracking_uri()} did not answer ({why}); "
        "start it (the team stack: `make team-up`; its database: PostgreSQL) or set "
        "tracking.tracking_uri, then rerun: stages already done are not repeated"
    )


def reaching_store(fn: Callable[P, R]) -> Callable[P, R]:
    """Run an MLflow call; a store that does not answer becomes one sentence naming it."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except MlflowException as err:
            if not _unreachable(err):
                raise
            raise _unavailable(_first_line(err)) from None

    return wrapper


# How long a stage waits for its first answer from the store (finding its parent run: reads).
# MLflow's client retries a server that hangs once per timeout: a tracking server whose
# PostgreSQL is down holds each request for minutes (it retries its database connection), so
# without this bound the error would come after 5 tries × MLFLOW_HTTP_REQUEST_TIMEOUT.
OPENING_DEADLINE_S = 20.0


def answering_within(seconds: float, fn: Callable[P, R]) -> Callable[P, R]:
    """`reaching_store(fn)`, which must return within `seconds`; else TrackingUnavailable. The
    call runs in a daemon thread: one left hanging does not hold the process at exit."""
    guarded = reaching_store(fn)

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        done: dict[str, object] = {}

        def call() -> None:
            try:
                done["value"] = guarded(*args, **kwargs)
            except BaseException as err:  # re-raised in the caller's thread
                done["error"] = err

        thread = threading.Thread(target=call, name="mlflow-opening", daemon=True)
        thread.start()
        thread.join(seconds)
        if thread.is_alive():
            raise _unavailable(f"no answer within {seconds:g} s")
        if "error" in done:
            raise done["error"]  # type: ignore[misc]
        return done["value"]  # type: ignore[return-value]

    return wrapper


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0]
    return text if len(text) < 240 else text[:237] + "..."


@dataclass(frozen=True)
class Tracker:
    """Every MLflow write of the pipeline's tasks: this execution's parent run, its runs, the
    registry's versions and aliases. Retries and the error for a store that does not answer
    live here, once. `params` are kept for the runs it creates (each holds every parameter of
    params.yaml)."""

    params: Params
    parent_run_id: str

    def _client(self) -> MlflowClient:
        return client(self.params.tracking)

    def _child(self, condition: str) -> str | None:
        c = self._client()
        exp = c.get_experiment_by_name(self.params.tracking.experiment)
        found = c.search_runs(
            [exp.experiment_id],
            f"tags.`mlflow.parentRunId` = '{self.parent_run_id}' and {condition}",
            max_results=1,
        )
        return found[0].info.run_id if found else None

    @reaching_store
    def stage_run(self, run_name: str, tags: dict[str, str]) -> str:
        """The child run `run_name` of the parent run: a retried stage finds the one its first
        try made; else a new one (see `nested_run`)."""
        found = self._child(f"attributes.run_name = '{run_name}'")
        return found or nested_run(self.params, self.parent_run_id, run_name, tags)

    @reaching_store
    def model_run(self, model_dir: Path, stage: str) -> str:
        """The run that logged the model in `model_dir` (see `model_run`)."""
        return model_run(self.params, self.parent_run_id, model_dir, stage)

    @reaching_store
    def own_model_run(self, model_dir: Path, run_name: str, tags: dict[str, str]) -> str:
        """The run of this execution that logged the model in `model_dir` (with these bytes):
        a retried stage finds the run its first try made; else a new nested run."""
        model_md5 = file_md5(Path(model_dir) / "model.onnx")
        found = self._child(
            f"tags.`{MODEL_HASH_TAG}` = '{model_md5}' and tags.`{MODEL_DIR_TAG}` = '{model_dir}'"
        )
        tags = {**tags, MODEL_HASH_TAG: model_md5, MODEL_DIR_TAG: str(model_dir)}
        return found or nested_run(self.params, self.parent_run_id, run_name, tags)

    def registered_model(self, continual: bool = False) -> str:
        """The registered model's name (`frugal.config.registered_model_name`)."""
        return registered_model_name(self.params, continual)

    @reaching_store
    def register(self, run_id: str, model_dir: Path, continual: bool = False) -> str:
        """Log and register the model in `model_dir` under `run_id` as a version of the
        pipeline's registered model (the continual stage's, with `continual`); returns it. A
        run registers once: a retry returns the version its first try registered."""
        name = self.registered_model(continual)
        versions = run_versions(self.params.tracking, run_id, name)
        if versions:
            return versions[-1]
        version = log_and_register_model(self.params.tracking, run_id, model_dir, name)
        sha, _ = git_commit()
        self._client().set_model_version_tag(name, version, "git.commit", sha)
        return version

    @reaching_store
    def set_alias(self, run_id: str, alias: str, continual: bool = False) -> str:
        """Point `alias` at the version `run_id` logged (see `register`)."""
        return set_alias(self.params.tracking, run_id, alias, self.registered_model(continual))

    @reaching_store
    def describe_versions(self, run_id: str, tags: dict[str, str], description: str) -> list[str]:
        """Tag and describe the versions of the pipeline's registered model `run_id` logged."""
        name = self.registered_model()
        return describe_versions(self.params.tracking, run_id, name, tags, description)

    @reaching_store
    def promote_champion(self, pool: str) -> str | None:
        """Point the `champion` alias at the rule's pick over every registered version of the
        champion pool `pool` (`champion_tags`: the same data, device profile and accuracy
        budget), from whichever pipeline: the eligible version with the lowest modeled energy
        (the earliest on a tie). Safe beside other pipelines doing the same: after setting the
        alias it reads the pool again and repeats until the pool it chose from is the pool
        there is, so the last writer writes the pick over every version described before it
        (each pipeline describes its versions before it promotes). Returns the version."""
        name, c = self.registered_model(), self._client()
        while True:
            pool_now = champion_pool(c, name, pool)
            if not pool_now:
                return None
            best = min(pool_now, key=lambda v: (pool_now[v], int(v)))
            c.set_registered_model_alias(name, CHAMPION_ALIAS, best)
            if champion_pool(c, name, pool) == pool_now:
                return best

    @reaching_store
    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int | None = None) -> None:
        """Log metrics (one request per 1,000) at `step`."""
        now = int(time.time() * 1000)
        entries = [
            mlflow.entities.Metric(key, float(value), now, step or 0)
            for key, value in metrics.items()
        ]
        c = self._client()
        for start in range(0, len(entries), 1000):
            c.log_batch(run_id, metrics=entries[start : start + 1000])

    @reaching_store
    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        self._client().log_batch(
            run_id, tags=[mlflow.entities.RunTag(k, str(v)) for k, v in tags.items()]
        )

    @reaching_store
    def run_tag(self, run_id: str, key: str) -> str:
        return self._client().get_run(run_id).data.tags[key]

    @reaching_store
    def log_dict(self, run_id: str, content: dict, artifact_file: str) -> None:
        self._client().log_dict(run_id, content, artifact_file)

    @reaching_store
    def log_artifacts(self, run_id: str, paths: Iterable[Path], folder: str) -> None:
        """Attach files to a run under `folder`."""
        c = self._client()
        for path in paths:
            c.log_artifact(run_id, str(path), folder)

    def log_reports(self, *paths: Path) -> None:
        """Attach files to the parent run under reports/."""
        self.log_artifacts(self.parent_run_id, paths, "reports")


def champion_pool(c: MlflowClient, name: str, pool: str) -> dict[str, float]:
    """{version: modeled µJ} of the eligible versions of `name` in `pool`."""
    found = c.search_model_versions(f"name = '{name}' and tags.`{CHAMPION_POOL_TAG}` = '{pool}'")
    return {
        str(v.version): float(v.tags[CHAMPION_UJ_TAG])
        for v in found
        if v.tags.get(CHAMPION_ELIGIBLE_TAG) == "true"
    }


@contextmanager
def pipeline_run(
    params: Params, execution_id: str | None = None, last: bool = True
) -> Iterator[Tracker]:
    """The parent run of this execution, open while the block runs: found by commit × params ×
    raw-data hash (plus the Prefect flow-run id when the whole pipeline is one flow), or
    created. The one owner of its life: an error marks it FAILED; the block that runs the last
    stage (`last`) marks it FINISHED. Each DVC stage is its own process and finds the same run;
    only `report`, dvc.yaml's last stage, finishes it."""
    opening = answering_within(OPENING_DEADLINE_S, parent_run)
    run_id = opening(params, data_md5(params.ingest.output), execution_id)
    try:
        yield Tracker(params, run_id)
    except TrackingUnavailable:
        raise  # no store to mark the run in: a rerun finds it by its key
    except BaseException:
        reaching_store(finish_run)(params.tracking, run_id, "FAILED")
        raise
    if last:
        reaching_store(finish_run)(params.tracking, run_id)
