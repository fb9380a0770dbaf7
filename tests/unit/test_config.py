"""params.yaml schema: strict, frozen, errors that name the key and the file. The repository's
params.yaml is the starting point, whatever its data: a test that needs a value sets it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

from frugal.config import Params, load_params, registered_model_name
from frugal.data.source import fingerprint
from frugal.errors import ParamsError
from tests.conftest import ROOT

PARAMS = ROOT / "params.yaml"


def _raw() -> dict[str, Any]:
    return yaml.safe_load(PARAMS.read_text(encoding="utf-8"))


def _write(tmp_path: Path, raw: dict[str, Any]) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def test_repository_params_are_valid() -> None:
    params = load_params(PARAMS)
    assert isinstance(params, Params)
    assert params.prepare.dev_fraction + params.prepare.test_fraction < 0.8


def test_a_users_own_source_validates_and_names_what_the_pipeline_registers(tmp_path) -> None:
    # given params.yaml pointed at a user's own CSV, with its own column names, as the README says
    data = tmp_path / "My Intents.csv"
    data.write_text("utterance,intent\nturn on the lights,lights_on\nwhat time is it,time\n")
    raw = _raw()
    raw["ingest"].update(source=str(data), text_column="utterance", label_column="intent")
    raw["tracking"]["registered_model"] = "auto"
    raw["continual"]["registered_model"] = "auto"
    # when it is loaded
    params = load_params(_write(tmp_path, raw))
    # then it validates, the source stage fingerprints that file, and the registered models
    # are named after it, not after TREC
    assert params.ingest.source == str(data) and params.ingest.text_column == "utterance"
    assert list(fingerprint(raw["ingest"])["files"]) == ["My Intents.csv"]
    assert registered_model_name(params) == "frugal-my-intents"
    assert registered_model_name(params, continual=True) == "frugal-my-intents-continual"


def test_the_registered_model_is_named_after_the_data_unless_named(tmp_path) -> None:
    def names(tracking: str, continual: str, **ingest: str) -> tuple[str, str]:
        raw = _raw()
        raw["ingest"].update(ingest)
        raw["tracking"]["registered_model"] = tracking
        raw["continual"]["registered_model"] = continual
        params = load_params(_write(tmp_path, raw))
        return registered_model_name(params), registered_model_name(params, continual=True)

    trec = {"source": "trec", "trec_labels": "coarse"}
    assert names("auto", "auto", **trec) == ("frugal-trec-coarse", "frugal-trec-coarse-continual")
    assert names("auto", "auto", source="trec", trec_labels="fine")[0] == "frugal-trec-fine"
    assert names("auto", "auto", source="data/hf_intents/")[0] == "frugal-hf-intents"  # a folder
    assert names("intents", "auto", **trec) == ("intents", "intents-continual")
    assert names("intents", "updates", **trec) == ("intents", "updates")


def test_the_registered_model_defaults_to_auto(tmp_path) -> None:
    raw = _raw()
    del raw["tracking"]["registered_model"]
    raw["ingest"].update(source="trec", trec_labels="coarse")
    assert registered_model_name(load_params(_write(tmp_path, raw))) == "frugal-trec-coarse"


def test_unknown_key_names_the_key_and_the_file(tmp_path: Path) -> None:
    # given a typo in a train key
    raw = _raw()
    raw["train"]["epohcs"] = 3
    path = _write(tmp_path, raw)
    # when / then
    with pytest.raises(ParamsError, match=r"train\.epohcs: unknown key") as err:
        load_params(path)
    assert str(path) in str(err.value)


def test_out_of_range_value_names_the_key(tmp_path: Path) -> None:
    raw = _raw()
    raw["train"]["batch_size"] = 0
    path = _write(tmp_path, raw)
    with pytest.raises(ParamsError, match=r"train\.batch_size: .*got 0") as err:
        load_params(path)
    assert str(path) in str(err.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ParamsError, match="parameters file not found") as err:
        load_params(path)
    assert str(path) in str(err.value)


def test_invalid_yaml_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("train: [unclosed\n", encoding="utf-8")
    with pytest.raises(ParamsError, match="not valid YAML") as err:
        load_params(path)
    assert str(path) in str(err.value)


def test_overrides_merge_deeply() -> None:
    # when one nested key is overridden
    params = load_params(PARAMS, overrides={"train": {"epochs": 1}, "ingest": {"max_rows": 50}})
    base = load_params(PARAMS)
    # then it changes and its siblings keep their file values
    assert params.train.epochs == 1
    assert params.ingest.max_rows == 50
    assert params.train.batch_size == base.train.batch_size
    assert params.ingest.source == base.ingest.source


def test_bad_override_is_reported_with_the_key() -> None:
    with pytest.raises(ParamsError, match=r"train\.epochs"):
        load_params(PARAMS, overrides={"train": {"epochs": 0}})


def test_params_are_frozen() -> None:
    params = load_params(PARAMS)
    with pytest.raises(pydantic.ValidationError):
        params.train.epochs = 99  # type: ignore[misc]


def test_planning_for_a_workload_profile_does_not_price_is_refused(tmp_path: Path) -> None:
    raw = _raw()
    raw["profile"]["workloads"] = ["batch"]  # documents: no streaming
    with pytest.raises(ParamsError, match=r"compress.workloads plans for \['streaming'\]"):
        load_params(_write(tmp_path, raw))
    raw["compress"]["workloads"] = ["batch"]
    assert load_params(_write(tmp_path, raw)).profile.workloads == ["batch"]


def test_auto_settings_and_their_alternatives_validate(tmp_path: Path) -> None:
    raw = _raw()
    raw["continual"]["steps"], raw["train"]["max_length"] = "auto", "auto"
    params = load_params(_write(tmp_path, raw))
    assert params.continual.steps == "auto" and params.train.max_length == "auto"
    raw["continual"]["steps"] = [["a", "b"], ["c"]]
    raw["train"]["max_length"] = 64
    params = load_params(_write(tmp_path, raw))
    assert params.continual.steps == [["a", "b"], ["c"]] and params.train.max_length == 64
    raw["train"]["max_length"] = "longest"
    with pytest.raises(ParamsError, match="train.max_length"):
        load_params(_write(tmp_path, raw))


def test_a_shared_path_is_written_once_and_each_section_can_still_override_it() -> None:
    # given the dev split's path written once (a YAML anchor) and read by four sections
    assert PARAMS.read_text(encoding="utf-8").count("data/splits/dev.parquet") == 1
    base = load_params(PARAMS)
    dev = base.sample.eval_data
    assert base.train.dev_data == base.compress.dev_data == base.evaluate.dev_data == dev
    # when one section's is overridden
    params = load_params(PARAMS, overrides={"compress": {"dev_data": "elsewhere.parquet"}})
    # then only that section reads elsewhere
    assert params.compress.dev_data == Path("elsewhere.parquet")
    assert params.train.dev_data == params.evaluate.dev_data == params.sample.eval_data == dev


def test_a_section_under_its_old_name_fails_naming_the_new_one(tmp_path: Path) -> None:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    # a params file from before the renames: `energy` for profile, the curve's keys in forecast
    old = dict(raw)
    old["energy"] = old.pop("profile")
    old["forecast"] = {**raw["forecast"], "fractions": [0.1, 0.5, 1.0], "seeds": [13]}
    with pytest.raises(ParamsError) as err:
        load_params(_write(tmp_path, old))
    message = str(err.value)
    assert "energy -> profile" in message
    assert "forecast.fractions -> learning_curve.fractions" in message
    assert "forecast.seeds -> learning_curve.seeds" in message
    assert message.startswith(str(tmp_path / "params.yaml"))
    # ... and as an override of a deployment run too
    with pytest.raises(ParamsError, match="energy -> profile"):
        load_params(ROOT / "params.yaml", {"energy": {"max_requests": 3}})
