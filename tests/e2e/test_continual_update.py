"""A user's own new-domain file (`continual.update_source`) through the continual stage's
command: it arrives after the configured steps, every method learns its class, the shipped
model knows it; a file that cannot be an update is refused in one clear message. Runs on the
shared tiny pipeline with its outputs, and MLflow store, redirected to a temporary folder."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import yaml

from frugal.continual.methods import STATS_FILE, ClassStats, pooled_features
from frugal.model.modeling import load_classifier
from frugal.model.runtime import OnnxClassifier
from tests.conftest import ROOT
from tests.e2e.conftest import project_env

WEATHER = [f"will it rain or snow in town number {i} on sunday" for i in range(20)]


def _stage(repo, tmp_path, update: str | None, **continual) -> subprocess.CompletedProcess:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["continual"].update(
        {
            "update_source": update,
            "methods": ["finetune", "random_replay"],
            "data_dir": str(tmp_path / "continual"),
            "output_dir": str(tmp_path / "models" / "continual"),
            "report": str(tmp_path / "continual.json"),
            "steps_report": str(tmp_path / "continual_steps.csv"),
            "plot": str(tmp_path / "continual.png"),
        }
        | continual
    )
    params["tracking"].update(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_root=str(tmp_path / "mlruns")
    )
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return subprocess.run(
        [sys.executable, "-m", "flows", "continual", "--params", str(path)],
        cwd=repo, env=project_env(repo), capture_output=True, text=True, timeout=900,
    )  # fmt: skip


def test_a_users_update_file_arrives_last_and_a_bad_one_is_refused(tiny_pipeline, tmp_path):
    repo = tiny_pipeline.repo
    update = repo / "data" / "updates" / "weather.csv"
    try:
        # given a file of a new class, with its own column names
        update.write_text("text,label\n" + "".join(f"{t},WEATHER\n" for t in WEATHER))
        # when the continual stage runs with it
        result = _stage(repo, tmp_path, "data/updates/weather.csv")
        # then it arrived last, and the models of every method, the shipped one too, know it
        assert result.returncode == 0, result.stderr[-3000:]
        report = json.loads((tmp_path / "continual.json").read_text())
        assert report["steps"][-1] == ["WEATHER"]
        last = len(report["steps"]) - 1
        for record in report["records"]:
            if record["step"] == last:
                assert "WEATHER" in record["per_class"], record["method"]
        shipped = json.loads((tmp_path / "models" / "continual" / "frugal.json").read_text())
        assert shipped["labels"][-1] == "WEATHER"

        # given a file that only repeats classes the model knows
        update.write_text("text,label\n" + "".join(f"{t},LOC\n" for t in WEATHER))
        result = _stage(repo, tmp_path / "bad", "data/updates/weather.csv")
        assert result.returncode == 2, result.stderr[-3000:]
        assert "Traceback" not in result.stderr
        assert "weather.csv: its classes ['LOC'] are all classes the model already knows" in (
            result.stderr
        )
    finally:
        update.unlink(missing_ok=True)


def report_rows(tmp_path) -> pd.DataFrame:
    """The update's training rows, as the stage wrote them (the last step's data file)."""
    steps = sorted((tmp_path / "continual").glob("step_*.parquet"))
    return pd.read_parquet(steps[-1])


def test_by_default_an_update_starts_from_trains_model_and_no_update_keeps_it(
    tiny_pipeline, tmp_path
):
    repo = tiny_pipeline.repo
    base = json.loads((repo / "models" / "base" / "frugal.json").read_text())
    update = repo / "data" / "updates" / "weather.csv"
    try:
        # given the default run's setting (no simulated domains) and a file of a new class
        update.write_text("text,label\n" + "".join(f"{t},WEATHER\n" for t in WEATHER))
        # when the continual stage runs with it and the one method the default names
        method = yaml.safe_load((ROOT / "params.yaml").read_text())["continual"]["methods"]
        assert method == ["stats_head"]  # the benchmark's choice (test_default_choices.py)
        result = _stage(repo, tmp_path, "data/updates/weather.csv", steps="none", methods=method)
        # then train's model was updated (no step 0 training): its classes, then the new one
        assert result.returncode == 0, result.stderr[-3000:]
        report = json.loads((tmp_path / "continual.json").read_text())
        assert len(report["steps"]) == 2 and report["steps"][1] == ["WEATHER"]
        assert set(report["steps"][0]) <= set(base["labels"])  # the labels train bought
        initial = next(r for r in report["records"] if r["method"] == "initial")
        assert initial["seconds"] == 0.0  # train's model, not trained again
        assert report["shipped"]["method"] == "stats_head"
        shipped_dir = tmp_path / "models" / "continual"
        shipped = json.loads((shipped_dir / "frugal.json").read_text())
        assert shipped["labels"] == base["labels"] + ["WEATHER"]
        # it kept no text, only the statistics its next update needs, beside the model
        last = next(r for r in report["records"] if r["method"] == "stats_head")
        stats = ClassStats.load(shipped_dir / STATS_FILE)
        assert last["memory_examples"] == 0 and last["memory_bytes"] == stats.nbytes
        assert stats.labels == shipped["labels"] and stats.counts[-1] == len(report_rows(tmp_path))
        # and the served graph runs the solved head: ONNX Runtime's logits are the LDA's
        served = OnnxClassifier(shipped_dir, threads=1)
        clf = load_classifier(shipped_dir)
        features = pooled_features(clf, WEATHER[:4])
        weights, bias = stats.head()
        logits, solved = served.logits(WEATHER[:4]), features @ weights.T + bias
        assert np.abs(logits - solved).max() <= 1e-3 * np.abs(solved).max()  # float32 rounding
        assert (
            served.predict_proba(WEATHER[:4]).argmax(1).tolist() == [len(shipped["labels"]) - 1] * 4
        )
    finally:
        update.unlink(missing_ok=True)

    # given no update file, when the stage runs, then train's model stays current, said so
    result = _stage(repo, tmp_path / "none", None, steps="none", methods=["stats_head"])
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "none" / "continual.json").read_text())
    assert report["shipped"]["method"] == "initial"
    assert "no update arrived" in report["shipped"]["why"]
    kept = (tmp_path / "none" / "models" / "continual" / "model.safetensors").read_bytes()
    assert kept == (repo / "models" / "base" / "model.safetensors").read_bytes()
