"""The HTML report: every section from real-shaped inputs, the champion and why, plots
embedded (the page is self-contained), absent plots skipped, text escaped."""

from __future__ import annotations

import base64
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from frugal import catalog  # noqa: E402
from frugal.report.page import ReportInputs, render  # noqa: E402


def _model(accuracy, diff, uj, champion=False, front=True):
    ci95 = {"difference": diff, "ci95_low": diff - 0.01, "ci95_high": diff + 0.01, "examples": 9}
    ci90 = {"difference": diff, "ci90_low": diff - 0.01, "ci90_high": diff + 0.01, "examples": 9}
    return {
        "accuracy": accuracy,
        "macro_f1": accuracy - 0.02,
        "ece": 0.05,
        "n_test": 1000,
        "size_mb": 1.0,
        "f1": {"A": 0.5},
        "accuracy_vs_baseline": ci95,
        "accuracy_vs_baseline_ci90": ci90,
        "dev_accuracy": 0.9,
        "dev_accuracy_vs_baseline": ci95,
        "selection_accuracy": 0.9,
        "selection_accuracy_vs_baseline": {
            "examples": 9,
            "difference": diff / 2,
            "ci90_low": diff / 2 - 0.01,
            "ci90_high": diff / 2 + 0.01,
        },
        "measured_latency_ms_p50": 12.0,
        "measured_latency_ms_p95": 15.0,
        "measured_weights_bytes": 90_300_000 if not champion else 11_270_000,
        "modeled_uj_per_utterance": {"phone": {"batch": uj, "streaming": 10 * uj}},
        "champion": champion,
        "pareto_front": {"batch": front, "streaming": front},
    }


def _continual(summary: dict) -> dict:
    """reports/continual.json around a per-method summary (no steps recorded)."""
    return {
        "steps": [["A"], ["B"]],
        "memory_fraction": 0.1,
        "step_examples": [100, 50],
        "summary": summary,
        "ablation": [],
        "shipped": {"method": next(iter(summary)), "rule": "r", "why": "w"},
        "records": [],
    }


PLAN = {
    "profile": "phone",
    "workload": "batch",
    "target": 0.92,
    "energy_budget_uj": 500.0,
    "model": "size_target",
    "energy_uj": 405.0,
    "selection_accuracy_vs_base": -0.0014,
    "labels": {"n_labels": 1830, "low": 1100, "high": 4200},
    "expected_accuracy": 0.9203,
    "measured_test_accuracy_now": 0.8783,
    "considered": [{"model": "size_target", "energy_uj": 405.0, "n_labels": 1830}],
}


def _inputs(tmp_path, continual=True, plan=PLAN):
    plt.plot([1, 2], [3, 4])
    png = tmp_path / "curve.png"
    plt.savefig(png)
    plt.close()
    return ReportInputs(
        metrics=catalog.METRICS.check(
            {
                "base": _model(0.881, 0.0, 7175.0, front=False),
                "size_target": _model(0.8783, -0.0028, 405.0, champion=True),
            }
        ),
        forecast=catalog.FORECAST.check(
            {
                "forecasts": [{"n_labels": 1000, "score": 0.89, "low": 0.87, "high": 0.91}],
                "max_score": {"score": 0.89, "low": 0.88, "high": 0.92},
                "labels_for_target": {"target": 0.92, "n_labels": None, "low": 2549, "high": None},
                "labels_measured": 500,
                "at_labels_bought": {
                    "n_labels": 500,
                    "forecast": 0.8712,
                    "low": 0.85,
                    "high": 0.89,
                    "measured": 0.8834,
                },
                "method": "log_power",
                "calibration": {"nominal": 0.9},
                "pool_size": 5000,
                "points": {"order": "random", "fractions": [0.0625, 0.5, 1.0], "seeds": [13, 14]},
            }
        ),
        sample=catalog.SAMPLE.check(
            {
                "annotator": "simulated",
                "strategy": "entropy",
                "labels": 500,
                "labels_by_source": {"simulated": 500},
                "classes_missing": [],
                "proxy_accuracy": 0.76,
                "full_pool_proxy_accuracy": 0.81,
                "strategies": {},
                "best_on_dev": None,
            }
        ),
        continual=catalog.CONTINUAL.check(
            _continual(
                {
                    "ccfi": {
                        "final_average_accuracy": 0.87,
                        "final_dev_average_accuracy": 0.88,
                        "final_mean_forgetting": 0.066,
                        "update_seconds": 88.0,
                        "memory_examples": 0,
                        "gap_to_full_retrain_pt": 2.4,
                        "time_vs_full_retrain": 0.307,
                    }
                }
            )
            | {
                "ablation": [
                    {
                        "method": "ccfi",
                        "adds": "dynamic consolidation",
                        "over": "fisher_replay",
                        "dev_pt": -1.234,
                        "test_pt": -2.5,
                    }
                ],
                "shipped": {
                    "method": "ccfi",
                    "rule": "the highest dev average accuracy <within budget>",
                    "why": "ccfi: dev average accuracy 88.00% after the last step",
                },
            }
        )
        if continual
        else None,
        plan=plan,
        champion_rule="lowest energy within 0.5 pt <of the base>",
        profile="phone",
        plots={"Annotation curves": png, "Pareto front": tmp_path / "missing.png"},
        provenance={"git commit": "abc123"},
    )


def test_report_names_the_champion_and_why_and_embeds_the_plots(tmp_path):
    page = render(_inputs(tmp_path))
    champion = re.search(r"<p class='champion'>(.*?)</p>", page).group(1)
    assert "size_target" in champion and "-0.28 pt" in champion and "5.6%" in champion
    assert "-0.14 pt against the base model" in champion  # dev, where it was chosen
    assert "&lt;of the base&gt;" in champion  # escaped
    assert "size_target ★ champion" in page and "7,175" in page and "405" in page
    assert "87.00%" in page and "+2.40" in page  # the continual table
    assert "Shipped: <b>ccfi</b>" in page and "&lt;within budget&gt;" in page
    assert "dynamic consolidation" in page and "-1.23" in page and "-2.50" in page  # ablation
    assert "[2,549, –]" in page  # labels for the target: lower bound only
    assert (
        "at 0.0625, 0.5, 1 of the 500 bought labels (a seeded random share; seeds 13, 14)" in page
    )
    assert "method log_power" in page
    # the fit where the labels were bought, beside dev (points) and test (the base model)
    assert "500 labels bought the curve gives 87.12% [85.00%, 89.00%]" in page
    assert "88.34% on dev" in page and "88.10% on test (reported only" in page
    images = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    assert len(images) == 1 and base64.b64decode(images[0])[:4] == b"\x89PNG"
    assert "Pareto front</figcaption>" not in page  # a plot that is not there is skipped
    assert "abc123" in page


def test_report_without_continual_results_has_no_such_section(tmp_path):
    page = render(_inputs(tmp_path, continual=False))
    assert "Continual updates" not in page and "<h2>Models</h2>" in page


def test_continual_table_without_full_retraining_shows_no_comparison():
    from frugal.report.page import continual_table

    row = continual_table(catalog.CONTINUAL.check(_continual(
        {"ccfi": {"final_average_accuracy": 0.9, "final_dev_average_accuracy": 0.9,
                  "final_mean_forgetting": 0.01, "update_seconds": 12.0, "memory_examples": 0}}
    ))).iloc[0]  # fmt: skip
    assert row["gap to full retrain, pt"] == "–" and row["update time"] == "12 s"


def test_continual_table_says_what_each_method_keeps_of_the_old_data():
    from frugal.report.page import continual_table

    base = {"final_average_accuracy": 0.9, "final_dev_average_accuracy": 0.9,
            "final_mean_forgetting": 0.01, "update_seconds": 1.0}  # fmt: skip
    rows = continual_table(catalog.CONTINUAL.check(_continual(
        {"random_replay": base | {"memory_examples": 1200, "memory_bytes": 61440},
         "stats_head": base | {"memory_examples": 0, "memory_bytes": 1_200_000}}
    ))).set_index("method")["kept of the old data"]  # fmt: skip
    assert rows.to_dict() == {
        "random_replay": "1,200 texts, 60 KiB",
        "stats_head": "no text, 1,172 KiB",
    }


def test_report_shows_the_budget_plan_or_its_refusal(tmp_path):
    page = render(_inputs(tmp_path))
    section = page.split("<h2>Budget plan</h2>")[1].split("<h2>")[0]
    assert "Buy <b>1,830</b> labels (90% interval 1,100 to 4,200)" in section
    assert "<b>size_target</b> at 405.0 µJ" in section and "92.03%" in section
    assert "-0.14 pt" in section and "at most 500.0 µJ per utterance" in section
    refused = {k: PLAN[k] for k in ("profile", "workload", "target", "energy_budget_uj")}
    page = render(_inputs(tmp_path, plan=refused | {"refused": "no model variant meets <it>"}))
    assert "<b>refused</b>: no model variant meets &lt;it&gt;" in page
    assert "Budget plan" not in render(_inputs(tmp_path, plan=None))
