"""The Dask task runner as a config change: on a local Dask cluster of 2 worker processes, the
sample stage's strategies × seeds give exactly the curves the default thread pool gave, and the
compress stage's candidate plans and variants exactly the same files."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

from tests.e2e.conftest import project_env


def _on_dask(repo: Path, tmp_path: Path, stage: str, edit) -> str:
    """Run `python -m flows <stage>` in the tiny pipeline's repo on a local Dask cluster of 2 workers,
    with `edit(params)` sending its outputs under `tmp_path` and MLflow to its own store."""
    params = yaml.safe_load((repo / "params.yaml").read_text())
    edit(params)
    params["tracking"].update(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_root=str(tmp_path / "art")
    )
    params["orchestration"] = {"task_runner": "dask", "workers": 2, "dask_address": None}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = subprocess.run(
        [sys.executable, "-m", "flows", stage, "--params", str(tmp_path / "params.yaml")],
        cwd=repo,
        env=project_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "LocalCluster" in result.stdout + result.stderr, "not run on a Dask cluster"
    return result.stdout + result.stderr


def test_sampling_on_a_local_dask_cluster_equals_the_thread_pool(tiny_pipeline, tmp_path):
    repo = tiny_pipeline.repo

    def edit(params: dict) -> None:
        for key in ("output", "curve", "rounds", "summary", "plot"):
            params["sample"][key] = str(tmp_path / params["sample"][key].split("/")[-1])
        params["sample"]["annotations"] = str(tmp_path / "annotations.csv")

    _on_dask(repo, tmp_path, "sample", edit)
    key = ["strategy", "seed", "n_labels"]
    on_dask = pd.read_csv(tmp_path / "annotation_rounds.csv").sort_values(key)
    threads = pd.read_csv(repo / "reports/annotation_rounds.csv").sort_values(key)
    assert len(on_dask) == len(threads) > 0
    pd.testing.assert_frame_equal(
        on_dask[[*key, "accuracy"]].reset_index(drop=True),
        threads[[*key, "accuracy"]].reset_index(drop=True),
    )
    bought = pd.read_parquet(tmp_path / "labeled.parquet")
    assert (
        bought["id"].tolist()
        == pd.read_parquet(repo / "data/labels/labeled.parquet")["id"].tolist()
    )


def test_compression_plans_on_a_local_dask_cluster_equal_the_thread_pool(tiny_pipeline, tmp_path):
    """Candidate plans and variants (one with distillation) as Dask tasks: the same plan
    table and byte-identical variant files as the thread pool's run in the tiny pipeline."""
    repo = tiny_pipeline.repo
    variants = ["energy_ptq", "energy_qat"]

    def edit(params: dict) -> None:
        cfg = params["compress"]
        cfg["variants"] = variants
        cfg["output_dir"] = str(tmp_path / "compressed")
        for key in ("report", "sensitivity_report", "subgroup_report", "candidates_report"):
            cfg[key] = str(tmp_path / cfg[key].split("/")[-1])

    log = _on_dask(repo, tmp_path, "compress", edit)
    assert log.count("candidate-plan-") >= 3 and log.count("compress-variant-") >= 2
    candidates = pd.read_csv(tmp_path / "plan_candidates.csv")
    pd.testing.assert_frame_equal(candidates, pd.read_csv(repo / "reports/plan_candidates.csv"))
    for name in variants:
        for file in ("model.safetensors", "compression.json"):
            ours = (tmp_path / "compressed" / name / file).read_bytes()
            theirs = (repo / "models/compressed" / name / file).read_bytes()
            assert hashlib.md5(ours).digest() == hashlib.md5(theirs).digest(), (name, file)
