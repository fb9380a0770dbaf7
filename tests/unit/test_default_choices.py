"""The default run ships what the research configurations chose on dev: the continual method the
continual benchmark's dev rule picked, and a compression set that holds the research run's
champion and the int8 anchor it is compared with."""

from __future__ import annotations

import json

import pandas as pd
import yaml

from tests.conftest import ROOT

RESULTS = ROOT / "benchmarks" / "results"


def _default_params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))


def test_the_default_continual_method_is_the_benchmarks_dev_rule_choice():
    # given the continual benchmark's results (every configuration, every seed)
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from continual_updates import dev_rule_choice

    from frugal.continual.methods import RECIPES

    results = json.loads((RESULTS / "continual_updates.json").read_text(encoding="utf-8"))
    every = results["all_configs"]
    assert set(every["configs"]) == {"default", "hum_last", "fine"}
    # when the choice is derived again from the per-seed picks it records
    choice = dev_rule_choice(results, every["configs"])
    # then it is the recorded choice, stores no training text, and is the one method the
    # default run applies
    assert every["choice"] == choice and not RECIPES[choice].stores_text
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


def test_the_forecast_fits_the_way_chosen_on_development_curves():
    # benchmarks/finetuned_curves.py choose: fine-tuned + proxy curves on the NLP development
    # data sets, every way in frugal.forecast.curves.SHAPES scored against the fine-tuned truth
    from frugal.forecast.curves import SHAPES, fit_curve

    results = json.loads((RESULTS / "finetuned_curves.json").read_text(encoding="utf-8"))
    assert set(results["summary"]) == set(SHAPES)
    best = min(s["mae_pt"] for s in results["summary"].values() if s["fitted"] == 5)
    assert results["summary"][results["chosen"]]["mae_pt"] <= best + 0.25  # the written rule
    # the forecast stage fits the learning_curve points alone: the `points` way
    assert results["chosen"] == "points"
    source = (ROOT / "frugal" / "stages" / "forecast.py").read_text(encoding="utf-8")
    assert 'fit_curve(points[["n_labels", "score"]])' in source
    frame = pd.DataFrame({"n_labels": [31, 250, 500], "score": [0.63, 0.9, 0.94]})
    chosen = SHAPES["points"](frame, frame).predict([3766])
    assert chosen[0][0] == fit_curve(frame).predict([3766])[0][0]
