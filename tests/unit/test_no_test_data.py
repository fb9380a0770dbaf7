"""No choice reads the test split (issue 29): a team buying labels has no test set yet, so the
learning-curve points, the forecast, `frugal plan` and the report's budget plan must not open
it. Test figures are only reported (`evaluate`)."""

from __future__ import annotations

import builtins
import json
import os
from pathlib import Path

import pandas as pd
import pytest
import yaml

from frugal import catalog
from frugal.config import load_params
from frugal.stages.forecast import forecast
from tests.conftest import ROOT
from tests.reports import metrics_entry, profile_entry

NO_TEST_STAGES = ("learning_curve", "forecast")


def _resolved(template: str, params: dict) -> str:
    """A dvc.yaml dep with its `${a.b}` params filled in."""
    while "${" in template:
        start = template.index("${")
        end = template.index("}", start)
        value: object = params
        for part in template[start + 2 : end].split("."):
            value = value[part]  # type: ignore[index]
        template = template[:start] + str(value) + template[end + 1 :]
    return template


def test_the_points_are_scored_on_dev_and_no_forecasting_stage_depends_on_test():
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    params = load_params(ROOT / "params.yaml")
    assert params.learning_curve.eval_data == params.train.dev_data
    assert params.learning_curve.eval_data != params.evaluate.test_data
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    test_split = str(params.evaluate.test_data)
    for name in NO_TEST_STAGES:
        deps = [_resolved(str(d), raw) for d in stages[name]["deps"]]
        assert test_split not in deps, f"stage {name} depends on the test split"


@pytest.fixture
def test_split_guarded(tmp_path, monkeypatch):
    """A working copy whose test split exists (a read would succeed) and where every open of
    it is recorded: the paths the code under test opened that are the test split."""
    monkeypatch.chdir(tmp_path)
    params = load_params(ROOT / "params.yaml")
    test_split = (tmp_path / params.evaluate.test_data).resolve()
    test_split.parent.mkdir(parents=True)
    pd.DataFrame({"text": ["what is a test ?"], "label": ["DESC"]}).to_parquet(test_split)
    opened: list[str] = []

    def guard(original, position=0):
        def wrapped(*args, **kwargs):
            target = args[position] if len(args) > position else None
            if isinstance(target, (str, os.PathLike)) and Path(target).resolve() == test_split:
                opened.append(str(target))
            return original(*args, **kwargs)

        return wrapped

    monkeypatch.setattr(builtins, "open", guard(builtins.open))
    monkeypatch.setattr(pd, "read_parquet", guard(pd.read_parquet))
    monkeypatch.setattr(pd, "read_csv", guard(pd.read_csv))
    monkeypatch.setattr(Path, "open", guard(Path.open))
    monkeypatch.setattr(Path, "read_text", guard(Path.read_text))
    monkeypatch.setattr(Path, "read_bytes", guard(Path.read_bytes))
    # what the plan reads: the forecast (the curve fitted to the learning-curve points),
    # evaluate's and profile's reports
    points = pd.DataFrame({"n_labels": [31, 250, 500], "score": [0.62, 0.88, 0.925]})
    fitted, _ = forecast(points, 3000, params.forecast, params.learning_curve)
    params.forecast.output.parent.mkdir(parents=True, exist_ok=True)
    catalog.FORECAST.write(params, fitted)
    metrics = {
        name: metrics_entry(accuracy, delta)
        for name, accuracy, delta in (("base", 0.91, 0.0), ("energy_qat", 0.912, -0.002))
    }
    params.evaluate.output.write_text(json.dumps(metrics))
    profile = {
        name: profile_entry({"phone": {"batch": uj, "streaming": 10 * uj}})
        for name, uj in (("base", 7000.0), ("energy_qat", 800.0))
    }
    params.profile.output.write_text(json.dumps(profile))
    yield params, opened
    # the guard itself works: reading the split is seen
    pd.read_parquet(test_split)
    assert opened and Path(opened[-1]).resolve() == test_split


def test_frugal_plan_reads_no_test_data(test_split_guarded, capsys):
    from frugal.cli import main

    _, opened = test_split_guarded
    assert main(["plan", "--target", "0.9", "--params", str(ROOT / "params.yaml")]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == "energy_qat"
    assert opened == []


def test_the_reports_budget_plan_reads_no_test_data(test_split_guarded):
    from frugal.stages.report import _plan

    params, opened = test_split_guarded
    metrics, fitted = catalog.METRICS.read(params), catalog.FORECAST.read(params)
    assert _plan(params, metrics, fitted)["model"] == "energy_qat"
    assert opened == []
