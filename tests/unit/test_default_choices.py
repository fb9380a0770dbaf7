"""The default run ships what the research configurations chose on dev: the continual method the
continual benchmark's dev rule picked, and a compression set that holds the research run's
champion and the int8 anchor it is compared with."""

from __future__ import annotations

import json

import yaml

from tests.conftest import ROOT

RESULTS = ROOT / "benchmarks" / "results"


def _default_params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))


def test_the_default_continual_method_is_the_benchmarks_dev_rule_choice():
    # given the continual benchmark's results (both domain orders, every seed)
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from continual_updates import dev_rule_choice

    results = json.loads((RESULTS / "continual_updates.json").read_text(encoding="utf-8"))
    # when the choice is derived again from the per-seed picks it records
    choice = dev_rule_choice(results, ["default", "hum_last"])
    # then it is the recorded choice, and the one method the default run applies
    assert results["both_orders"]["choice"] == choice
    assert _default_params()["continual"]["methods"] == [choice]


def test_the_default_run_updates_trains_model_not_simulated_domains():
    continual = _default_params()["continual"]
    assert continual["steps"] == "none"
    assert continual["base_model"] == _default_params()["train"]["output_dir"]


def test_the_default_compression_set_holds_the_anchor_and_the_research_champion():
    variants = _default_params()["compress"]["variants"]
    assert "ort_int8" in variants  # ONNX Runtime's one-line int8: what a user would pick instead
    # make bench-compress: every variant, by the same stages, from the same base model
    research = json.loads((RESULTS / "compress_variants.json").read_text(encoding="utf-8"))
    research = research["research"]["metrics"]
    champion = next(name for name, m in research.items() if m.get("champion"))
    assert champion in variants
