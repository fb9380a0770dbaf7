"""End to end through the real tools: `dvc repro` runs every stage's Prefect flow on a small
real sample, MLflow (SQLite) records and registers the model, DVC metrics/plots/push/pull work.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from tests.e2e.conftest import TINY_OVERRIDES, project_env, registered_model


def _run(cmd: list[str], repo: Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd, cwd=repo, env=project_env(repo), capture_output=True, text=True, timeout=900, **kw
    )


@pytest.fixture(scope="module")
def repo(tiny_pipeline) -> Path:
    return tiny_pipeline.repo


def test_repro_writes_every_stage_output(repo):
    for out in [
        "data/raw.parquet",
        "data/splits/pool.parquet",
        "data/splits/test.parquet",
        "models/base/model.safetensors",
        "models/base/model.onnx",
        "models/base/tokenizer.json",
        "models/base/frugal.json",
        "reports/metrics.json",
        "reports/report.html",
        "reports/classification_report.json",
        "reports/predictions.csv",
        "reports/plots/evaluate/confusion_base.png",
        "data/embeddings/pool.npz",
        "data/labels/labeled.parquet",
        "reports/annotation_curve.csv",
        "reports/plots/annotation_curve.png",
        "reports/forecast_points.csv",
        "reports/plots/forecast.png",
        "reports/profile.json",
        "reports/energy/base/tensors.csv",
        "reports/energy/base/layers.csv",
        "reports/plots/energy/base.png",
        "models/compressed/int8_ptq/model.onnx",
        "models/compressed/energy_qat/compression.json",
        "reports/compress.json",
        "reports/sensitivity.csv",
        "reports/subgroup_sensitivity.csv",
        "reports/plan_candidates.csv",
        "reports/plots/energy/energy_qat.png",
        "reports/plots/pareto.png",
    ]:
        assert (repo / out).is_file(), out
    metrics = json.loads((repo / "reports/metrics.json").read_text())["base"]
    report = json.loads((repo / "reports/classification_report.json").read_text())["base"]
    assert metrics["accuracy"] == report["accuracy"]
    assert sum(map(sum, report["confusion"])) == report["n_test"] == metrics["n_test"]
    assert 0 <= metrics["accuracy"] <= 1 and set(metrics["f1"]) == set(report["per_class"]) == {
        "ABBR",
        "DESC",
        "ENTY",
        "HUM",
        "LOC",
        "NUM",
    }


def test_profile_and_evaluate_report_energy_latency_and_the_baseline_difference(repo):
    import pandas as pd

    profile = json.loads((repo / "reports/profile.json").read_text())["base"]
    modeled, measured = profile["modeled"], profile["measured"]
    assert modeled["texts"] == 12 and modeled["requests"]["streaming"] > 12
    assert set(modeled["uj_per_utterance"]) == {"phone", "mcu", "server"}
    for profile_name, by_workload in modeled["uj_per_utterance"].items():
        assert 0 < by_workload["batch"] < by_workload["streaming"], profile_name
    # a bigger on-chip memory never costs more
    uj = modeled["uj_per_utterance"]
    assert uj["server"]["batch"] <= uj["phone"]["batch"] <= uj["mcu"]["batch"]
    assert 0 < measured["latency_ms_p50"] <= measured["latency_ms_p95"]
    assert measured["weights_bytes"] == (repo / "models/base/model.onnx").stat().st_size
    assert measured["rapl"].startswith(("measured:", "unavailable:"))
    tensors = pd.read_csv(repo / "reports/energy/base/tensors.csv")
    phone = tensors[(tensors["profile"] == "phone") & (tensors["workload"] == "batch")]
    assert phone["total_pj"].sum() / 1e6 == pytest.approx(uj["phone"]["batch"], abs=1e-3)
    assert set(phone["component"]) == {"embeddings", "attention", "feed_forward", "norm", "head"}
    metrics = json.loads((repo / "reports/metrics.json").read_text())["base"]
    base_diff = metrics["accuracy_vs_baseline"]
    assert {k: base_diff[k] for k in ("difference", "ci95_low", "ci95_high")} == {
        "difference": 0.0, "ci95_low": 0.0, "ci95_high": 0.0
    }  # fmt: skip
    assert metrics["modeled_uj_per_utterance"] == uj
    assert metrics["measured_latency_ms_p50"] == measured["latency_ms_p50"]


def test_compress_writes_every_variant_smaller_and_evaluate_picks_a_champion(repo):
    import onnx

    compress = json.loads((repo / "reports/compress.json").read_text())
    variants = {
        "ort_int8", "int8_ptq", "energy_ptq", "energy_qat", "structured_pruning", "size_target"
    }  # fmt: skip
    assert set(compress["variants"]) == variants
    assert set(compress["sensitivity_agreement"]) >= {"fisher_vs_kl"}
    # sizes of what serves: the ONNX graphs
    base_bytes = (repo / "models/base/model.onnx").stat().st_size
    int8_bytes = (repo / "models/compressed/int8_ptq/model.onnx").stat().st_size
    assert int8_bytes < 0.3 * base_bytes  # 8-bit codes really stored
    anchor = repo / "models/compressed/ort_int8"  # ONNX Runtime's quantize_dynamic: no plan
    assert not (anchor / "compression.json").exists()
    ops = {node.op_type for node in onnx.load(anchor / "model.onnx").graph.node}
    assert {"MatMulInteger", "DynamicQuantizeLinear"} <= ops or "DynamicQuantizeMatMul" in ops
    structured = repo / "models/compressed/structured_pruning"
    assert (structured / "model.onnx").stat().st_size < int8_bytes
    plan = json.loads((structured / "compression.json").read_text())
    encoder = [
        shape[0] * shape[1]
        for name, shape in plan["shapes"].items()
        if ".encoder.layer." in name and name.endswith(".weight") and len(shape) == 2
    ]
    removed = 1 - sum(encoder) / (6 * (4 * 384 * 384 + 2 * 384 * 1536))
    assert 0.3 <= removed < 0.3 + 49152 / (6 * 1769472)  # structured_sparsity, ≤ one group over
    query = plan["shapes"]["bert.encoder.layer.0.attention.self.query.weight"]
    heads_left = 12 - len(plan["plan"]["removed_heads"].get("0", []))
    assert query == [32 * heads_left, 384]  # removed heads are gone from the stored shapes
    size_target = (repo / "models/compressed/size_target/model.onnx").stat().st_size
    assert size_target <= base_bytes / 7.5  # the planner's eighth, plus the graph's own ops
    metrics = json.loads((repo / "reports/metrics.json").read_text())
    assert set(metrics) == {"base"} | variants
    profile = json.loads((repo / "reports/profile.json").read_text())
    for name in variants:
        # fewer bits, less modeled energy, in both workloads
        for workload in ("batch", "streaming"):
            uj = profile[name]["modeled"]["uj_per_utterance"]["phone"][workload]
            assert uj < profile["base"]["modeled"]["uj_per_utterance"]["phone"][workload]
        for key in ("accuracy_vs_baseline", "dev_accuracy_vs_baseline"):
            diff = metrics[name][key]
            assert diff["ci95_low"] <= diff["difference"] <= diff["ci95_high"]
    champions = [name for name, m in metrics.items() if m["champion"]]
    assert len(champions) == 1  # the base model always qualifies, so there is one
    budget = 0.005  # evaluate.accuracy_budget: chosen on selection, whatever dev or test say
    assert metrics[champions[0]]["selection_accuracy_vs_baseline"]["difference"] >= -budget


def test_priced_widths_are_the_executed_widths_of_every_model(repo):
    """The energy tables price each tensor at the bits its model.onnx executes, and every
    compressed graph executes exactly its plan."""
    import pandas as pd

    from frugal.model.runtime import executed_widths, load_graph

    for model_dir in [repo / "models/base", *sorted((repo / "models/compressed").iterdir())]:
        executed = executed_widths(load_graph(model_dir))
        table = pd.read_csv(repo / "reports/energy" / model_dir.name / "tensors.csv")
        priced = table[~table["tensor"].str.endswith("attention.products")]
        priced = priced.drop_duplicates("tensor").set_index("tensor")["bits"]
        for tensor, bits in priced.items():
            assert bits == (executed[tensor].bits if tensor in executed else 0), tensor
        plan_path = model_dir / "compression.json"
        if plan_path.is_file():
            for tensor, bits in json.loads(plan_path.read_text())["bits"].items():
                assert priced[tensor] == bits, (model_dir.name, tensor)


def test_uniform_int8_priced_from_its_graph_equals_the_hand_computation(repo):
    """int8_ptq on a device without SRAM: every weight read from DRAM each time its module
    runs, at 8 bits plus one float32 scale per block of 64; its MACs on the int8 unit; the
    attention products in float32."""
    import pandas as pd

    from frugal.compress.packed import load_float, model_energy_of
    from frugal.energy.modeled import DeviceProfile, count_lengths, request_lengths

    model_dir = repo / "models/compressed/int8_ptq"
    texts = pd.read_parquet(repo / "data/splits/test.parquet")["text"].tolist()[:5]
    profile = DeviceProfile("bare", 0, 160.0, 1.25, {32: 4.6, 8: 0.3}, "hand")
    (result,) = model_energy_of(model_dir, texts, [profile], ("batch",))
    clf, bits = load_float(model_dir)
    lengths = request_lengths(texts, "batch", clf.tokenizer, clf.max_length)
    counts = count_lengths(clf.model, lengths)
    expected = 0.0
    for module_name, module in clf.model.named_modules():
        usage = counts.get(module_name)
        for param_name, param in module.named_parameters(recurse=False):
            if usage is None:
                continue
            name = f"{module_name}.{param_name}"
            if name in bits:  # 8-bit codes + float32 scales: per block of 64 (embedding) or
                rows, length = param.shape  # per output channel (linear: DynamicQuantizeMatMul)
                blocks = -(-length // 64) if isinstance(module, torch.nn.Embedding) else 1
                per_read = rows * length + 4 * rows * blocks
                if isinstance(module, torch.nn.Embedding):
                    expected += usage.rows * per_read / rows * 160.0
                else:
                    expected += usage.calls * per_read * 160.0
                    expected += usage.rows * rows * length * 0.3
            else:  # float32: biases, norms, position and token-type tables
                if isinstance(module, torch.nn.Embedding):
                    expected += usage.rows * param.shape[1] * 4 * 160.0
                else:
                    expected += usage.calls * param.numel() * 4 * 160.0
                if isinstance(module, torch.nn.LayerNorm) and param_name == "weight":
                    expected += usage.rows * param.numel() * 4.6
        if module_name.endswith("attention.self"):
            pairs = counts[f"{module_name}.query"].token_pairs
            expected += 2 * pairs * module.query.out_features * 4.6
    assert result.reports["bare"].total_pj * len(texts) == pytest.approx(expected, rel=1e-9)


def test_champion_serves_from_the_registry_through_onnx_runtime_in_a_fresh_process(repo):
    code = (
        "import sys, mlflow, pandas as pd\n"
        f"mlflow.set_tracking_uri('sqlite:///{repo / 'mlruns/mlflow.db'}')\n"
        f"m = mlflow.pyfunc.load_model('models:/{registered_model(repo)}@champion')\n"
        "print(m.predict(pd.DataFrame({'text': ['Who wrote Hamlet ?']}))['label'][0])\n"
        "print('torch' in sys.modules, 'onnxruntime' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    label, loaded = done.stdout.strip().splitlines()[-2:]
    assert label in {"ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"}
    assert loaded == "False True"  # served by ONNX Runtime, torch never imported


def test_sample_buys_the_budget_and_training_uses_exactly_those_labels(repo):
    import pandas as pd

    labeled = pd.read_parquet(repo / "data/labels/labeled.parquet")
    pool = pd.read_parquet(repo / "data/splits/pool.parquet").set_index("id")
    assert len(labeled) == 72 == labeled["id"].nunique()
    assert (labeled["label"].to_numpy() == pool.loc[labeled["id"], "label"].to_numpy()).all()
    assert sorted(set(labeled["round"])) == list(range(6))  # cold start + 5 rounds of 12
    history = json.loads((repo / "reports/train.json").read_text())
    assert history["n_labeled"] == 72
    curve = pd.read_csv(repo / "reports/annotation_curve.csv")
    assert list(curve.columns) == ["n_labels", "badge", "margin", "random"]
    assert list(curve["n_labels"]) == [12, 24, 36, 48, 60, 72]
    summary = json.loads((repo / "reports/sample.json").read_text())
    assert summary["labels"] == 72 and set(summary["strategies"]) == {"random", "margin", "badge"}


def test_forecast_reports_pool_size_and_budgets_with_intervals(repo):
    import pandas as pd

    points = pd.read_csv(repo / "reports/forecast_points.csv")
    assert list(points["n_labels"]) == [24, 48, 72]
    forecast = json.loads((repo / "reports/forecast.json").read_text())
    pool_size = len(pd.read_parquet(repo / "data/splits/pool.parquet"))
    assert [f["n_labels"] for f in forecast["forecasts"]] == sorted([pool_size, 500])
    for entry in [*forecast["forecasts"], forecast["max_score"]]:
        assert 0 <= entry["low"] <= entry["score"] <= entry["high"] <= 1
    assert forecast["labels_for_target"]["target"] == 0.92


def test_frugal_plan_answers_from_the_run_and_refuses_clearly(repo):
    forecast = json.loads((repo / "reports/forecast.json").read_text())
    metrics = json.loads((repo / "reports/metrics.json").read_text())
    target = round(forecast["forecasts"][0]["score"], 3)  # the base model reaches it there

    def plan(*args: str) -> subprocess.CompletedProcess:
        return _run([sys.executable, "-m", "frugal.cli", "plan", *args], repo)

    answer = plan("--target", str(target))
    assert answer.returncode == 0, answer.stderr
    result = json.loads(answer.stdout)
    assert result["model"] in metrics and result["profile"] == "phone"
    assert result["energy_uj"] == min(c["energy_uj"] for c in result["considered"])
    labels = result["labels"]
    assert labels["low"] <= labels["n_labels"] and (labels["high"] or 10**9) >= labels["n_labels"]
    assert result["expected_accuracy"] >= target - 0.02  # the forecast grid is 4,000 points

    base_uj = json.loads((repo / "reports/profile.json").read_text())["base"]["modeled"]
    refusals = [(plan("--target", str(target), "--energy-budget", "0.001"), "energy budget")]
    reachable = forecast["max_score"]["high"]  # the band's edge; tests/unit/test_planning.py
    if reachable < 0.999:  # covers a curve whose band reaches 100%
        refusals.append((plan("--target", f"{reachable + 0.001:.4f}"), "above the most"))
    for refused, reason in refusals:
        assert refused.returncode == 2 and reason in refused.stderr
        assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert base_uj["uj_per_utterance"]["phone"]["batch"] > 0.001


def test_dvc_metrics_show_prints_accuracy(repo):
    result = _run(["dvc", "metrics", "show", "--json"], repo)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    values = next(iter(shown.values()))["data"]["reports/metrics.json"]["data"]
    assert (
        values["base"]["accuracy"]
        == json.loads((repo / "reports/metrics.json").read_text())["base"]["accuracy"]
    )


def test_dvc_plots_render_the_confusion_matrix(repo):
    result = _run(["dvc", "plots", "show", "-o", "plots_html"], repo)
    assert result.returncode == 0, result.stderr
    html = (repo / "plots_html" / "index.html").read_text()
    assert "predictions.csv" in html and "confusion_base.png" in html
    # dvc names each plot after its file, with the dots replaced
    assert "annotation_curve_csv" in html and "forecast_png" in html and "base_png" in html


def test_second_repro_recomputes_only_the_source_fingerprint(repo):
    result = _run(["dvc", "repro"], repo)
    assert result.returncode == 0, result.stderr
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    for stage in stages:
        if stage != "source":
            assert f"Stage '{stage}' didn't change, skipping" in result.stdout, stage
    assert "Running stage 'source'" in result.stdout


def test_model_is_tracked_and_registered_in_mlflow(repo):
    from mlflow.tracking import MlflowClient

    from frugal.hashing import data_md5

    uri = f"sqlite:///{repo / 'mlruns/mlflow.db'}"
    client = MlflowClient(uri, uri)
    registered = registered_model(repo)
    assert registered == "frugal-trec-coarse"  # named after the data: TREC, coarse labels
    versions = client.search_model_versions(f"name = '{registered}'")
    assert len(versions) == 7  # the base model and six compressed variants
    # each tells what it is: its variant, data, accuracies and modeled energy (evaluate's)
    for version in versions:
        variant = version.tags["frugal.variant"]
        assert version.description.startswith(f"{variant}: "), version.description
        assert "µJ/utterance modeled (phone, batch)" in version.description
        assert {"dvc.md5.raw", "selection_accuracy", "test_accuracy"} <= set(version.tags)
        assert "modeled_uj_per_utterance.phone.batch" in version.tags
    by_stage = {client.get_run(v.run_id).data.tags["frugal.stage"]: v for v in versions}
    assert set(by_stage) == {"train", "compress"}
    run = client.get_run(by_stage["train"].run_id)
    parent = client.get_run(run.data.tags["mlflow.parentRunId"])
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True
    ).stdout.strip()
    assert run.data.tags["git.commit"] == parent.data.tags["git.commit"] == commit
    assert run.data.params["train.max_steps"] == "30"
    assert 0 <= run.data.metrics["test_accuracy"] <= 1
    # the data hash in MLflow is the one DVC recorded for the same file
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    labeled_out = lock["stages"]["sample"]["outs"][0]
    assert labeled_out["path"] == "data/labels/labeled.parquet"
    assert run.data.tags["dvc.md5.labeled"] == labeled_out["md5"]
    assert labeled_out["md5"] == data_md5(repo / labeled_out["path"])
    model_out = lock["stages"]["train"]["outs"][0]
    assert data_md5(repo / "models/base") == model_out["md5"]
    assert parent.info.status == "FINISHED"
    # ... finished by the last stage, after `continual` logged its models into it
    runs = client.search_runs([run.info.experiment_id])
    continual = [r.info.start_time for r in runs if r.data.tags.get("frugal.stage") == "continual"]
    assert continual and parent.info.end_time >= max(continual)
    # the stages of one `dvc repro` share the parent run
    runs = client.search_runs([run.info.experiment_id])
    assert sum("mlflow.parentRunId" not in r.data.tags for r in runs) == 1
    stages = {r.data.tags.get("frugal.stage") for r in runs}
    assert {"sample", "forecast", "train", "compress"} <= stages
    # the champion alias points at the model evaluate flagged
    metrics = json.loads((repo / "reports/metrics.json").read_text())
    champion = [name for name, m in metrics.items() if m["champion"]]
    assert champion
    if champion:
        version = client.get_model_version_by_alias(registered, "champion")
        tags = client.get_run(version.run_id).data.tags
        expected = "base" if champion == ["base"] else champion[0]
        assert tags.get("frugal.variant", "base") == expected
    # profile and evaluate log onto the model's own run
    assert (
        run.data.metrics["modeled_uj.phone.streaming"] > run.data.metrics["modeled_uj.phone.batch"]
    )
    assert run.data.metrics["measured_latency_ms_p50"] > 0
    assert "test_accuracy_vs_baseline.difference" in run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "profile")}
    assert {"profile/tensors.csv", "profile/layers.csv", "profile/base.png"} <= artifacts
    sample_run = next(r for r in runs if r.data.tags.get("frugal.stage") == "sample")
    history = client.get_metric_history(sample_run.info.run_id, "proxy_accuracy.margin")
    assert [m.step for m in history] == [12, 24, 36, 48, 60, 72]
    # the HTML report is on the parent run, and names the champion
    reports = {a.path for a in client.list_artifacts(parent.info.run_id, "reports")}
    assert "reports/report.html" in reports
    page = (repo / "reports/report.html").read_text()
    assert "class='champion'" in page and page.count("data:image/png;base64,") >= 6
    if champion:
        assert f"{champion[0]} ★ champion" in page


def test_registered_model_loads_and_predicts_through_mlflow(repo):
    import mlflow
    import pandas as pd

    mlflow.set_tracking_uri(f"sqlite:///{repo / 'mlruns/mlflow.db'}")
    model = mlflow.pyfunc.load_model(f"models:/{registered_model(repo)}/1")
    questions = pd.DataFrame({"text": ["Who wrote Hamlet ?", "How far is the Moon ?"]})
    predicted = model.predict(questions)
    labels = {"ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"}
    assert list(predicted.columns) == ["label", "score"] and set(predicted["label"]) <= labels
    # the same predictions as the model folder DVC tracks, and as its torch reference
    from frugal.model.modeling import load_classifier, predict_proba
    from frugal.model.runtime import OnnxClassifier

    onnx_model = OnnxClassifier(repo / "models/base")
    served = onnx_model.predict_proba(questions["text"].tolist())
    assert list(predicted["label"]) == [onnx_model.labels[i] for i in served.argmax(1)]
    clf = load_classifier(repo / "models/base")
    direct = predict_proba(clf, questions["text"].tolist())
    assert list(predicted["label"]) == [clf.labels[i] for i in direct.argmax(1)]


def test_dvc_push_pull_round_trip(repo):
    assert _run(["dvc", "push"], repo).returncode == 0
    before = (repo / "models/base/model.safetensors").read_bytes()
    shutil.rmtree(repo / "models/base")
    shutil.rmtree(repo / ".dvc/cache")
    result = _run(["dvc", "pull"], repo)
    assert result.returncode == 0, result.stderr
    assert (repo / "models/base/model.safetensors").read_bytes() == before
    status = _run(
        ["dvc", "status", "prepare", "sample", "train", "compress", "profile", "evaluate"], repo
    )
    assert "up to date" in status.stdout, status.stdout


def test_continual_updates_every_method_and_registers_every_step(repo):
    import pandas as pd
    from mlflow.tracking import MlflowClient

    from frugal.hashing import file_md5

    report = json.loads((repo / "reports/continual.json").read_text())
    steps = [["DESC", "ENTY", "HUM"], ["LOC"], ["NUM"]]
    for k, classes in enumerate(steps):  # each step's arriving data: one class set, one file
        data = pd.read_parquet(repo / f"data/continual/step_{k}.parquet")
        assert sorted(set(data["label"])) == sorted(classes)
    methods = TINY_OVERRIDES["continual"]["methods"]
    records = {(r["method"], r["step"]): r for r in report["records"]}
    assert set(records) == {("initial", 0)} | {(m, k) for m in methods for k in (1, 2)}
    for method in methods:
        assert set(records[(method, 1)]["per_class"]) == {"DESC", "ENTY", "HUM", "LOC"}
        assert set(records[(method, 2)]["forgetting"]) == {"DESC", "ENTY", "HUM", "LOC"}
    pool = pd.read_parquet(repo / "data/splits/pool.parquet")
    seen = pool["label"].isin(["DESC", "ENTY", "HUM", "LOC", "NUM"]).sum()
    for method in ("random_replay", "mixed_distill"):  # memory_fraction per class, ≥ 1
        assert 5 <= records[(method, 2)]["memory_examples"] <= 0.1 * seen + 5
    assert records[("finetune", 1)]["memory_examples"] == 0
    assert set(report["summary"]["mixed_distill"]) >= {
        "gap_to_full_retrain_pt",
        "time_vs_full_retrain",
    }
    # the ablation: the one part mixed_distill_head adds over mixed_distill, in points
    (row,) = report["ablation"]
    assert (row["method"], row["over"]) == ("mixed_distill_head", "mixed_distill")
    summary = report["summary"]
    assert row["test_pt"] == pytest.approx(
        100
        * (
            summary["mixed_distill_head"]["final_average_accuracy"]
            - summary["mixed_distill"]["final_average_accuracy"]
        )
    )
    meta = json.loads((repo / "models/continual/frugal.json").read_text())
    assert meta["labels"] == ["DESC", "ENTY", "HUM", "LOC", "NUM"]

    uri = f"sqlite:///{repo / 'mlruns/mlflow.db'}"
    client = MlflowClient(uri, uri)
    name = registered_model(repo, continual=True)
    versions = client.search_model_versions(f"name = '{name}'")
    assert len(versions) == 1 + 2 * len(methods)  # every step's model of every method
    # `current` and models/continual follow the dev rule: the best dev average accuracy after
    # the last step among the methods that store no training text and whose updates take at
    # most max_time_share of full retraining's (none within it, as tiny data's fixed costs can
    # make it: the fastest of those that store no text)
    from frugal.config import load_params
    from frugal.continual.methods import RECIPES

    budget = load_params(repo / "params.yaml").continual.max_time_share
    shipped = report["shipped"]["method"]
    textless = {m: s for m, s in summary.items() if not RECIPES[m].stores_text}
    share = {m: s["max_update_time_vs_full_retrain"] for m, s in textless.items()}
    eligible = {
        m: s["final_dev_average_accuracy"] for m, s in textless.items() if share[m] <= budget
    }
    if eligible:
        assert shipped == max(eligible, key=eligible.get)
    else:
        assert shipped == min(share, key=share.get)
    assert records[("full_retrain", 2)]["memory_examples"] == seen  # it keeps every text
    current = client.get_model_version_by_alias(name, "current")
    run = client.get_run(current.run_id)
    assert run.data.tags["frugal.continual.method"] == shipped
    assert run.data.tags["frugal.continual.step"] == "2"
    assert run.data.metrics["average_accuracy"] == records[(shipped, 2)]["average_accuracy"]
    assert file_md5(repo / "models/continual/model.onnx") == run.data.tags["frugal.model_md5"]
