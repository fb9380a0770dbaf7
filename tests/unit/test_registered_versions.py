"""The MLflow registry tells versions apart: each registered version carries its variant, the
data it was trained on, its dev and test accuracy and its modeled energy as tags, and a
one-line description; versions register under a name derived from the data. MLflow runs on a
temporary SQLite file."""

from __future__ import annotations

import pytest

from frugal import catalog
from frugal.registry import CHAMPION_ALIAS, version_summary
from frugal.stages.evaluate import version_summary_of
from orchestration import tracking
from orchestration.tracking import Tracker
from tests.reports import profile_entry
from tests.stores import model_folder, sqlite_tracker


@pytest.fixture(scope="module")
def tracker(tmp_path_factory: pytest.TempPathFactory) -> Tracker:
    """A pipeline execution's tracker on the default data (TREC, coarse labels) and the
    derived registered model's name, logging to a temporary SQLite store."""
    return sqlite_tracker(
        tmp_path_factory.mktemp("mlflow"),
        ingest={"source": "trec", "trec_labels": "coarse"},
        tracking={"registered_model": "auto"},
        continual={"registered_model": "auto"},
    )


def test_the_description_reads_as_one_line_of_figures():
    tags, description = version_summary(
        "energy_ptq", "abc", 0.9333, 0.9091, 1171.2, "phone", "batch"
    )
    assert description == (
        "energy_ptq: 90.9% test, 1,171 µJ/utterance modeled (phone, batch), selection 93.3%"
    )
    assert tags == {
        "frugal.variant": "energy_ptq",
        "dvc.md5.raw": "abc",
        "selection_accuracy": "0.9333",
        "test_accuracy": "0.9091",
        "modeled_uj_per_utterance.phone.batch": "1171.2",
    }


def test_every_registered_version_carries_its_tags_and_description(tracker, tmp_path):
    # given the base model and a compressed variant registered as train and compress do
    client, params = tracking.client(tracker.params.tracking), tracker.params
    run_ids = {}
    for variant in ("base", "energy_ptq"):
        model_dir = model_folder(tmp_path, variant)
        run_ids[variant] = tracker.model_run(model_dir, "train")
        tracker.register(run_ids[variant], model_dir)
    # when evaluate describes them from its figures (as in reports/metrics.json, profile.json)
    figures = {"base": (0.941, 0.932, 7273.0), "energy_ptq": (0.933, 0.909, 1171.2)}
    cfg = params.evaluate.model_copy(update={"champion_profile": "phone"})
    described = {}
    for variant, (selection, test, uj) in figures.items():
        metrics = {"selection_accuracy": selection, "accuracy": test}
        profiled = catalog.PROFILE.schema.model_validate(
            {variant: profile_entry({"phone": {"batch": uj, "streaming": 9 * uj}})}
        )[variant]
        tags, description = version_summary_of(variant, metrics, profiled, "raw-md5", cfg)
        described[variant] = tracker.describe_versions(run_ids[variant], tags, description)
    assert described == {"base": ["1"], "energy_ptq": ["2"]}
    tracker.set_alias(run_ids["energy_ptq"], CHAMPION_ALIAS)
    # then the registered model is named after the data, and each version tells what it is
    name = "frugal-trec-coarse"
    assert tracker.registered_model() == name
    base, champion = client.get_model_version(name, "1"), client.get_model_version(name, "2")
    assert base.tags["frugal.variant"] == "base" and base.tags["test_accuracy"] == "0.9320"
    assert champion.tags == {
        "frugal.variant": "energy_ptq",
        "dvc.md5.raw": "raw-md5",
        "selection_accuracy": "0.9330",
        "test_accuracy": "0.9090",
        "modeled_uj_per_utterance.phone.batch": "1171.2",
        "git.commit": tracking.git_commit()[0],
    }
    assert champion.description == (
        "energy_ptq: 90.9% test, 1,171 µJ/utterance modeled (phone, batch), selection 93.3%"
    )
    assert str(client.get_model_version_by_alias(name, CHAMPION_ALIAS).version) == "2"


def test_the_continual_stage_registers_under_its_own_derived_name(tracker, tmp_path):
    model_dir = model_folder(tmp_path, "continual")
    run_id = tracker.stage_run("continual-finetune-step1", {"frugal.stage": "continual"})
    version = tracker.register(run_id, model_dir, continual=True)
    tracker.set_alias(run_id, "current", continual=True)
    name = "frugal-trec-coarse-continual"
    client = tracking.client(tracker.params.tracking)
    assert str(client.get_model_version_by_alias(name, "current").version) == version
