"""The compression goals of issue 5, measured: energy vs uniform int8, accuracy loss vs FP32,
batch-1 latency FP32 ÷ variant and weight compression of every pipeline variant (read from the
pipeline's reports/metrics.json and reports/profile.json), plus how much of the post-training
accuracy loss QAT recovers (test split, int8 kernels): for the champion's plan, and for uniform
4-bit and 2-bit weights with 8-bit activations (post-training vs the same after distillation).

Prints tables and writes JSON. Run after `dvc repro`, with nothing else busy on the CPU.

    dvc repro && python benchmarks/compression_goals.py
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from frugal.compressed import int8_execution, load_float  # noqa: E402
from frugal.compression import apply_bits, distill, plannable_tensors  # noqa: E402
from frugal.config import load_params  # noqa: E402
from frugal.modeling import load_classifier, predict_proba  # noqa: E402

DEFAULT_OUTPUT = ROOT / "benchmarks" / "results" / "compression_goals.json"


def variant_table(params_path: Path) -> pd.DataFrame:
    params = load_params(params_path)
    metrics = json.loads((ROOT / params.evaluate.output).read_text())
    profile = json.loads((ROOT / params.energy.output).read_text())
    base = "base"
    phone = params.evaluate.champion_profile
    rows = []
    for name, m in metrics.items():
        uj = profile[name]["modeled"]["uj_per_utterance"][phone]
        ref = profile.get("int8_ptq", profile[base])["modeled"]["uj_per_utterance"][phone]
        fp32 = profile[base]["modeled"]["uj_per_utterance"][phone]
        measured, base_measured = profile[name]["measured"], profile[base]["measured"]
        rows.append(
            {
                "model": name,
                "test_accuracy": round(m["accuracy"], 4),
                "loss_vs_fp32_pt": round(-100 * m["accuracy_vs_baseline"]["difference"], 2),
                "ci95_pt": [
                    round(100 * m["accuracy_vs_baseline"]["ci95_low"], 2),
                    round(100 * m["accuracy_vs_baseline"]["ci95_high"], 2),
                ],
                **{f"uj_{w}": round(uj[w], 1) for w in ("batch", "streaming")},
                **{
                    f"cut_vs_int8_{w}": round(1 - uj[w] / ref[w], 3) for w in ("batch", "streaming")
                },
                **{
                    f"cut_vs_fp32_{w}": round(1 - uj[w] / fp32[w], 3)
                    for w in ("batch", "streaming")
                },
                "latency_p50_ms": round(measured["latency_ms_p50"], 2),
                "fp32_latency_ratio": round(
                    base_measured["latency_ms_p50"] / measured["latency_ms_p50"], 2
                ),
                "weights_mb": round(measured["weights_bytes"] / 1e6, 2),
                "compression": round(base_measured["weights_bytes"] / measured["weights_bytes"], 2),
                "champion": m.get("champion", False),
            }
        )
    return pd.DataFrame(rows)


def qat_recovery(params_path: Path, widths: list[int]) -> dict:
    """Share of the post-training accuracy loss that distillation recovers, on test: for the
    champion's own plan (its QAT model is the pipeline's; its PTQ twin is made here) and for
    uniform W{b}A8 at each width in `widths` (both made here)."""
    params = load_params(params_path)
    cfg = params.compress
    torch.set_num_threads(cfg.threads)
    base = load_classifier(ROOT / params.train.output_dir)
    pool = pd.read_parquet(ROOT / cfg.unlabeled_data, columns=["text"])["text"].tolist()
    test = pd.read_parquet(ROOT / params.evaluate.test_data)
    texts, truth = test["text"].tolist(), test["label"].astype(str).tolist()

    def test_accuracy(clf, bits) -> float:
        executable = int8_execution(clf, bits)  # low-bit codes on int8 kernels, A8 dynamic
        predicted = predict_proba(executable, texts).argmax(1)
        return sum(clf.labels[p] == t for p, t in zip(predicted, truth, strict=True)) / len(truth)

    fp32 = test_accuracy(base, {})

    def recovered(ptq: float, qat: float) -> float | None:
        lost = fp32 - ptq
        return round((qat - ptq) / lost, 3) if lost > 0 else None

    results: dict = {"fp32_accuracy": round(fp32, 4)}
    qat_dir = ROOT / cfg.output_dir / "energy_qat"
    if qat_dir.is_dir():
        qat_model, bits = load_float(qat_dir)
        ptq = copy.deepcopy(base)
        apply_bits(ptq.model, bits)
        ptq_acc, qat_acc = test_accuracy(ptq, bits), test_accuracy(qat_model, bits)
        results["energy_qat_plan"] = {
            "ptq_accuracy": round(ptq_acc, 4),
            "qat_accuracy": round(qat_acc, 4),
            "recovered_share": recovered(ptq_acc, qat_acc),
        }
    for width in widths:
        bits = {name: width for name in plannable_tensors(base.model)}
        ptq = copy.deepcopy(base)
        apply_bits(ptq.model, bits)
        qat = copy.deepcopy(base)
        started = time.perf_counter()
        distill(
            qat,
            bits,
            pool,
            cfg.qat.epochs,
            cfg.qat.batch_size,
            cfg.qat.learning_rate,
            cfg.qat.seed,
            cfg.qat.activation_bits,
        )
        ptq_acc, qat_acc = test_accuracy(ptq, bits), test_accuracy(qat, bits)
        results[f"uniform_w{width}a8"] = {
            "ptq_accuracy": round(ptq_acc, 4),
            "qat_accuracy": round(qat_acc, 4),
            "recovered_share": recovered(ptq_acc, qat_acc),
            "qat_seconds": round(time.perf_counter() - started, 1),
        }
    results["qat"] = {"epochs": cfg.qat.epochs, "unlabeled_texts": len(pool)}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument(
        "--skip-qat",
        action="store_true",
        help="only the variant table (keeps the QAT figures already in --output)",
    )
    parser.add_argument("--widths", type=int, nargs="*", default=[4, 2], help="uniform W?A8")
    args = parser.parse_args()
    table = variant_table(args.params)
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(table.to_string(index=False))
    if args.skip_qat:
        previous = json.loads(args.output.read_text()) if args.output.is_file() else {}
        recovery = previous.get("qat_recovery")
    else:
        recovery = qat_recovery(args.params, args.widths)
    if recovery:
        print("QAT recovery (test):", json.dumps(recovery, indent=1))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps({"variants": table.to_dict("records"), "qat_recovery": recovery}, indent=2)
        + "\n",
        encoding="utf-8",
    )
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
