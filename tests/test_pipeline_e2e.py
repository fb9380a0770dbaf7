"""End to end through the real tools: `dvc repro` runs every stage's Prefect flow on a small
real sample, MLflow (SQLite) records and registers the model, DVC metrics/plots/push/pull work.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import TINY_OVERRIDES, make_repo_copy, project_env

pytestmark = pytest.mark.slow


def _run(cmd: list[str], repo: Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd, cwd=repo, env=project_env(repo), capture_output=True, text=True, timeout=900, **kw
    )


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    repo = make_repo_copy(tmp_path_factory.mktemp("repo"), TINY_OVERRIDES)
    result = _run(["dvc", "repro"], repo)
    assert result.returncode == 0, result.stdout + result.stderr
    return repo


def test_repro_writes_every_stage_output(repo):
    for out in [
        "data/raw.parquet",
        "data/splits/pool.parquet",
        "data/splits/test.parquet",
        "models/base/model.safetensors",
        "models/base/tokenizer.json",
        "models/base/frugal.json",
        "reports/metrics.json",
        "reports/classification_report.json",
        "reports/predictions.csv",
        "reports/plots/confusion_base.png",
    ]:
        assert (repo / out).is_file(), out
    metrics = json.loads((repo / "reports/metrics.json").read_text())["base"]
    report = json.loads((repo / "reports/classification_report.json").read_text())["base"]
    assert metrics["accuracy"] == report["accuracy"]
    assert sum(map(sum, report["confusion"])) == report["n_test"] == metrics["n_test"]
    assert 0 <= metrics["accuracy"] <= 1 and set(metrics["f1"]) == set(report["per_class"]) == {
        "ABBR",
        "DESC",
        "ENTY",
        "HUM",
        "LOC",
        "NUM",
    }


def test_dvc_metrics_show_prints_accuracy(repo):
    result = _run(["dvc", "metrics", "show", "--json"], repo)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    values = next(iter(shown.values()))["data"]["reports/metrics.json"]["data"]
    assert (
        values["base"]["accuracy"]
        == json.loads((repo / "reports/metrics.json").read_text())["base"]["accuracy"]
    )


def test_dvc_plots_render_the_confusion_matrix(repo):
    result = _run(["dvc", "plots", "show", "-o", "plots_html"], repo)
    assert result.returncode == 0, result.stderr
    html = (repo / "plots_html" / "index.html").read_text()
    assert "predictions.csv" in html and "confusion_base.png" in html


def test_second_repro_skips_every_stage_but_ingest(repo):
    result = _run(["dvc", "repro"], repo)
    assert result.returncode == 0, result.stderr
    for stage in ("prepare", "train", "evaluate"):
        assert f"Stage '{stage}' didn't change, skipping" in result.stdout


def test_model_is_tracked_and_registered_in_mlflow(repo):
    from mlflow.tracking import MlflowClient

    from frugal.hashing import data_md5

    uri = f"sqlite:///{repo / 'mlruns/mlflow.db'}"
    client = MlflowClient(uri, uri)
    versions = client.search_model_versions("name = 'frugal-intent'")
    assert len(versions) == 1
    run = client.get_run(versions[0].run_id)
    parent = client.get_run(run.data.tags["mlflow.parentRunId"])
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True
    ).stdout.strip()
    assert run.data.tags["git.commit"] == parent.data.tags["git.commit"] == commit
    assert run.data.params["train.max_steps"] == "30"
    assert 0 <= run.data.metrics["test_accuracy"] <= 1
    # the data hash in MLflow is the one DVC recorded for the same file
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    pool_out = next(
        o for o in lock["stages"]["prepare"]["outs"] if o["path"].endswith("pool.parquet")
    )
    assert run.data.tags["dvc.md5.labeled"] == pool_out["md5"] == data_md5(repo / pool_out["path"])
    model_out = lock["stages"]["train"]["outs"][0]
    assert data_md5(repo / "models/base") == model_out["md5"]
    assert parent.info.status == "FINISHED"
    # the train and evaluate stages of one `dvc repro` share the parent run
    runs = client.search_runs([run.info.experiment_id])
    assert sum("mlflow.parentRunId" not in r.data.tags for r in runs) == 1


def test_registered_model_loads_and_predicts_through_mlflow(repo):
    import mlflow
    import pandas as pd

    mlflow.set_tracking_uri(f"sqlite:///{repo / 'mlruns/mlflow.db'}")
    model = mlflow.pyfunc.load_model("models:/frugal-intent/1")
    questions = pd.DataFrame({"text": ["Who wrote Hamlet ?", "How far is the Moon ?"]})
    predicted = model.predict(questions)
    labels = {"ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"}
    assert list(predicted.columns) == ["label", "score"] and set(predicted["label"]) <= labels
    # the same predictions as the model folder DVC tracks
    from frugal.modeling import load_classifier, predict_proba

    clf = load_classifier(repo / "models/base")
    direct = predict_proba(clf, questions["text"].tolist())
    assert list(predicted["label"]) == [clf.labels[i] for i in direct.argmax(1)]


def test_dvc_push_pull_round_trip(repo):
    assert _run(["dvc", "push"], repo).returncode == 0
    before = (repo / "models/base/model.safetensors").read_bytes()
    shutil.rmtree(repo / "models/base")
    shutil.rmtree(repo / ".dvc/cache")
    result = _run(["dvc", "pull"], repo)
    assert result.returncode == 0, result.stderr
    assert (repo / "models/base/model.safetensors").read_bytes() == before
    status = _run(["dvc", "status", "prepare", "train", "evaluate"], repo)
    assert "up to date" in status.stdout, status.stdout
