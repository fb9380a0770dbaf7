"""What keeps a team's pipelines from corrupting each other's tracking (MLflow on a temporary
SQLite file; the same calls run against the team stack's server in tests/e2e/test_team_stack.py):
a retried stage registers nothing twice, the champion alias converges on the rule's pick over
every pipeline's versions in whatever order they finish, a store that does not answer is one
sentence, and a Dask task runs in its own checkout's folder."""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path

import cloudpickle
import pytest

from frugal.config import load_params
from frugal.registry import CHAMPION_ALIAS, champion_pool_key, champion_tags
from orchestration import tracking
from orchestration.runner import InFolder
from orchestration.tracking import Tracker, TrackingUnavailable, parent_run
from tests.conftest import ROOT


def _params(tmp: Path, uri: str | None = None, seed: int = 13):
    raw = tmp / "raw.parquet"
    raw.write_bytes(b"the raw data")
    return load_params(
        ROOT / "params.yaml",
        {
            "ingest": {"source": "trec", "trec_labels": "coarse", "output": str(raw)},
            "train": {"seed": seed},
            "tracking": {
                "tracking_uri": uri or f"sqlite:///{tmp / 'mlflow.db'}",
                "artifact_root": str(tmp / "artifacts"),
                "registered_model": "auto",
            },
        },
    )


def _model(folder: Path, name: str, content: bytes) -> Path:
    model_dir = folder / name
    model_dir.mkdir(parents=True)
    (model_dir / "model.onnx").write_bytes(content)
    (model_dir / "frugal.json").write_text("{}")
    return model_dir


def _pipeline(tmp: Path, seed: int) -> Tracker:
    """One pipeline execution (its own params, hence its own parent run) on a shared store."""
    params = _params(tmp, f"sqlite:///{tmp / 'mlflow.db'}", seed)
    return Tracker(params, parent_run(params, "raw-md5"))


def test_a_retried_stage_finds_its_run_and_registers_nothing_again(tmp_path):
    tracker = _pipeline(tmp_path, 13)
    model_dir = _model(tmp_path / "a", "base", b"weights")
    first = tracker.own_model_run(model_dir, "base", {"frugal.stage": "train"})
    version = tracker.register(first, model_dir)
    # the stage is retried: the same execution, the same model bytes
    again = tracker.own_model_run(model_dir, "base", {"frugal.stage": "train"})
    assert again == first and tracker.register(again, model_dir) == version == "1"
    assert tracker.stage_run("sample", {}) == tracker.stage_run("sample", {})
    # other bytes in the same folder are another model: a new run and version
    (model_dir / "model.onnx").write_bytes(b"retrained")
    other = tracker.own_model_run(model_dir, "base", {"frugal.stage": "train"})
    assert other != first and tracker.register(other, model_dir) == "2"
    client = tracking.client(tracker.params.tracking)
    assert len(client.search_model_versions("name = 'frugal-trec-coarse'")) == 2


@pytest.mark.parametrize("order", [("a", "b"), ("b", "a")])
def test_the_champion_is_the_pick_over_every_pipeline_whichever_finishes_first(tmp_path, order):
    pool = champion_pool_key("raw-md5", "phone", 0.01)
    # (eligible, modeled µJ) of each pipeline's models; a's cheapest model is off budget
    figures = {
        "a": {"base": (True, 900.0), "int4": (False, 100.0), "ptq": (True, 400.0)},
        "b": {"base": (True, 880.0), "ptq": (True, 350.0)},
    }
    trackers = {p: _pipeline(tmp_path, seed) for p, seed in (("a", 13), ("b", 14))}
    runs = {}
    for p in order:
        for name in figures[p]:
            model_dir = _model(tmp_path / p, name, f"{p}-{name}".encode())
            run_id = trackers[p].own_model_run(model_dir, name, {})
            runs[p, name] = run_id, trackers[p].register(run_id, model_dir)
    # a pool of other data does not compete
    stranger = _model(tmp_path / "c", "tiny", b"other data")
    odd = trackers["a"].own_model_run(stranger, "tiny", {})
    trackers["a"].register(odd, stranger)
    trackers["a"].describe_versions(odd, champion_tags("x:phone:0.01", True, 1.0), "")
    for p in order:  # each pipeline describes its versions, then promotes
        for name, (eligible, uj) in figures[p].items():
            tags = champion_tags(pool, eligible, uj)
            trackers[p].describe_versions(runs[p, name][0], tags, name)
        trackers[p].promote_champion(pool)
    client = tracking.client(trackers["a"].params.tracking)
    champion = client.get_model_version_by_alias("frugal-trec-coarse", CHAMPION_ALIAS)
    assert str(champion.version) == runs["b", "ptq"][1]
    assert champion.tags["git.commit"] == tracking.git_commit()[0]


def test_a_store_that_does_not_answer_is_one_sentence_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    params = _params(tmp_path, f"http://127.0.0.1:{port}")
    started = time.monotonic()
    with pytest.raises(TrackingUnavailable) as caught:
        with tracking.pipeline_run(params):
            pass
    assert time.monotonic() - started < 30
    message = str(caught.value)
    assert f"the MLflow tracking store at http://127.0.0.1:{port} did not answer" in message
    assert "\n" not in message and "Traceback" not in message


def test_a_store_that_accepts_but_hangs_is_named_within_the_opening_deadline(tmp_path, monkeypatch):
    # a tracking server whose database is down accepts the request and holds it for minutes:
    # here, a socket that listens and never answers
    import socket

    monkeypatch.setattr(tracking, "OPENING_DEADLINE_S", 2.0)
    with socket.socket() as hanging:
        hanging.bind(("127.0.0.1", 0))
        hanging.listen(8)
        port = hanging.getsockname()[1]
        params = _params(tmp_path, f"http://127.0.0.1:{port}")
        started = time.monotonic()
        with pytest.raises(TrackingUnavailable, match="no answer within 2 s"):
            with tracking.pipeline_run(params):
                pass
        assert time.monotonic() - started < 10


def _where() -> str:
    return os.getcwd()


def test_a_dask_task_runs_in_the_checkout_that_submitted_it(tmp_path):
    here = os.getcwd()
    moved = pickle.loads(cloudpickle.dumps(InFolder(_where, str(tmp_path))))
    assert moved() == str(tmp_path) and os.getcwd() == here
    assert moved.__name__ == "_where"


def test_stages_and_flows_write_to_mlflow_only_through_the_tracker():
    """No flow, and not the adapter that runs every stage, imports MLflow or reaches a client:
    every write goes through `Tracker`, where retries, idempotence and the store's error live.
    (The stages themselves import no MLflow at all: tests/unit/test_layers.py.)"""
    import ast

    offenders = []
    for path in sorted([ROOT / "orchestration" / "adapter.py", *(ROOT / "flows").glob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            imported = []
            if isinstance(node, ast.Import):
                imported = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported = [node.module]
            if any(name.split(".")[0] == "mlflow" for name in imported):
                offenders.append(f"{path.name}:{node.lineno} imports mlflow")
            if isinstance(node, ast.Attribute) and node.attr in ("client", "_client"):
                offenders.append(f"{path.name}:{node.lineno} reaches .{node.attr}")
    assert not offenders
