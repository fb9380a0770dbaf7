"""The `frugal-pipeline` flow: its `until` parameter (stop after a stage, as `dvc repro
<stage>`), and the parameters it parses once and hands to every stage's flow."""

from __future__ import annotations

import contextlib
import inspect

import pytest
import yaml

import flows.pipeline as pipeline
from flows.pipeline import frugal_pipeline
from frugal.config import Params, load_params
from frugal.errors import ParamsError
from frugal.stages.table import NAMES, STAGES
from orchestration.tracking import Tracker
from tests.conftest import ROOT


def test_until_names_a_dvc_stage():
    stages = list(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"])
    assert list(NAMES) == stages


def test_unknown_until_is_refused_before_any_stage_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing here to run on: a stage would fail differently
    with pytest.raises(
        ParamsError, match="until: unknown stage 'trian'; choose one of source, ingest"
    ):
        frugal_pipeline.fn(until="trian")


def test_every_stage_flow_takes_the_parsed_params_not_a_path():
    params = load_params(ROOT / "params.yaml")
    tracked = []
    for row in STAGES:
        flow = pipeline.FLOWS[row.name]
        assert flow.name == row.flow_name
        parameters = inspect.signature(flow.fn).parameters
        assert list(parameters)[0] == "params", row.name
        # the class itself, not the string "Params": a flow run served by a deployment
        # validates its parameters where that name does not resolve (pydantic: "not fully
        # defined"), so the adapter does not use `from __future__ import annotations`
        assert parameters["params"].annotation is Params, row.name
        arguments = {"params": params}
        if row.tracked:  # ... and, if it logs to MLflow, the execution's tracker
            assert list(parameters) == ["params", "tracker"], row.name
            assert parameters["tracker"].annotation is Tracker, row.name
            arguments["tracker"] = Tracker(params, "parent-run-id")
            tracked.append(row.name)
        else:
            assert list(parameters) == ["params"], row.name
        flow.validate_parameters(arguments)
    assert tracked == [s for s in NAMES[NAMES.index("sample") :] if s != "learning_curve"]
    assert tracked[-1] == "report"  # the last stage, which finishes the parent run under DVC


class _StageRecorder:
    """Stands in for a stage's flow (same signature): records what it was called with."""

    def __init__(self, stage: str, calls: list) -> None:
        self.stage, self.calls = stage, calls
        self.fn = pipeline.FLOWS[stage].fn

    def with_options(self, **_options) -> _StageRecorder:
        return self

    def __call__(self, params: Params, tracker: Tracker | None = None) -> str:
        self.calls.append((self.stage, params, tracker))
        return self.stage


def test_params_are_parsed_once_and_every_stage_gets_the_same_object(monkeypatch):
    # given the pipeline with every stage's flow, the lock and MLflow's parent run stubbed out
    parsed, calls, fingerprints, runs = [], [], [], []
    parse = pipeline.parse_params
    monkeypatch.setattr(
        pipeline, "parse_params", lambda *args: parsed.append(parse(*args)) or parsed[-1]
    )
    for row in STAGES:
        monkeypatch.setitem(pipeline.FLOWS, row.name, _StageRecorder(row.name, calls))
    monkeypatch.setattr(pipeline, "repo_lock", contextlib.nullcontext)
    monkeypatch.setattr(
        pipeline, "write_fingerprint", lambda ingest, _: fingerprints.append(ingest)
    )

    @contextlib.contextmanager
    def pipeline_run(params, execution_id):
        runs.append(("open", len(calls)))
        yield Tracker(params, "parent")
        runs.append(("finish", len(calls)))

    monkeypatch.setattr(pipeline, "pipeline_run", pipeline_run)
    # when it runs with an override
    result = frugal_pipeline.fn(str(ROOT / "params.yaml"), {"train": {"epochs": 1}})
    # then params.yaml was validated once, and each stage, in dvc.yaml's order, got that object
    assert len(parsed) == 1 and parsed[0].train.epochs == 1
    assert [stage for stage, _, _ in calls] == list(NAMES[1:]) and result == "report"
    assert all(params is parsed[0] for _, params, _ in calls)
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert fingerprints == [raw["ingest"]]  # the file's values, as the `source` stage writes
    # one parent run, opened after the data stages (its key hashes the raw data), finished
    # after the last stage; every tracked stage logged under it, the others got no tracker
    first_tracked = NAMES.index("sample") - 1
    assert runs == [("open", first_tracked), ("finish", len(STAGES))]
    tracked = {row.name: row.tracked for row in STAGES}
    for stage, _, tracker in calls:
        assert (tracker.parent_run_id if tracked[stage] else tracker) == (
            "parent" if tracked[stage] else None
        ), stage
