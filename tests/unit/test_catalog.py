"""The catalog's schemas say what the stages write: every committed report (HEAD's default run)
reads as its schema and writes back byte-identically; a report that parses but means
something else is a clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from frugal import catalog
from frugal.config import load_params
from frugal.errors import DataError

ROOT = Path(__file__).resolve().parents[2]
PARAMS = load_params(ROOT / "params.yaml")


@pytest.mark.parametrize("report", catalog.REPORTS, ids=lambda r: r.name)
def test_a_committed_report_reads_as_its_schema_and_writes_back_byte_identical(report):
    path = ROOT / report.path(PARAMS)
    value = report.read_file(path)
    assert catalog.json_text(report, value) == path.read_text(encoding="utf-8")


def test_a_typed_read_gives_the_figures_by_attribute():
    metrics = catalog.METRICS.read_file(ROOT / PARAMS.evaluate.output)
    base = metrics.root[PARAMS.train.output_dir.name]
    assert base.dev_accuracy_vs_baseline.difference == 0.0  # the base model against itself
    assert 0 < base.accuracy <= 1


def test_a_renamed_key_names_the_file_the_key_and_the_stage(tmp_path):
    data = json.loads((ROOT / PARAMS.evaluate.output).read_text(encoding="utf-8"))
    first = next(iter(data))
    data[first]["dev_acc_vs_baseline"] = data[first].pop("dev_accuracy_vs_baseline")
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(DataError) as caught:
        catalog.METRICS.read_file(path)
    message = str(caught.value)
    assert str(path) in message
    assert f"{first}.dev_accuracy_vs_baseline: Field required" in message
    assert f"{first}.dev_acc_vs_baseline: Extra inputs are not permitted" in message
    assert "`dvc repro evaluate`" in message


def test_a_value_of_the_wrong_kind_is_an_error(tmp_path):
    data = json.loads((ROOT / PARAMS.forecast.output).read_text(encoding="utf-8"))
    data["max_score"]["score"] = "high"
    path = tmp_path / "forecast.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(DataError, match=r"max_score\.score: Input should be a valid number"):
        catalog.FORECAST.read_file(path)


def test_a_missing_report_says_which_stage_makes_it(tmp_path):
    with pytest.raises(DataError, match=r"not found; run `dvc repro profile` first"):
        catalog.PROFILE.read_file(tmp_path / "profile.json")


def test_unset_optional_keys_stay_out_of_the_written_file(tmp_path):
    # forecast.json has labels_for_target only with forecast.target: a report without it is
    # written without it, not with null
    data = json.loads((ROOT / PARAMS.forecast.output).read_text(encoding="utf-8"))
    data.pop("labels_for_target", None)
    value = catalog.FORECAST.check(data)
    assert "labels_for_target" not in json.loads(catalog.json_text(catalog.FORECAST, value))


def test_a_producers_dict_is_checked_before_it_is_written(tmp_path):
    # a stage writes its dict through the catalog, at the report's own path; a key its
    # readers do not know fails there, and the file already written stays as it was
    params = load_params(ROOT / "params.yaml", {"train": {"history": str(tmp_path / "t.json")}})
    data = json.loads((ROOT / PARAMS.train.history).read_text(encoding="utf-8"))
    assert catalog.TRAIN.write(params, data) == tmp_path / "t.json"
    written = (tmp_path / "t.json").read_text(encoding="utf-8")
    assert written == (ROOT / PARAMS.train.history).read_text(encoding="utf-8")
    with pytest.raises(ValueError, match="best_dev_acc"):
        catalog.TRAIN.write(params, {**data, "best_dev_acc": 0.9})
    assert (tmp_path / "t.json").read_text(encoding="utf-8") == written
