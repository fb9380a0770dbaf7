"""Every runtime a team could ship, side by side in one run: torch FP32 eager (the base model as
trained), ONNX Runtime FP32 (models/base/model.onnx: ORT's transformer fusions applied, as in
every model), ONNX Runtime int8 from `onnxruntime.quantization.quantize_dynamic` on that fused
graph (the `ort_int8` variant: the anchor a user would pick instead of Frugal's plans, its
options chosen on dev), and every other compressed variant's model.onnx.

For each: batch-1 latency p50 / p95 with tokenizing (interleaved: in each of `--rounds` rounds
every model answers the same `--requests` test questions one at a time; ratios to torch FP32
are taken within a round, then the median over rounds), throughput at batch 32, peak RSS in a
fresh process that loads only that model's runtime, file bytes, test accuracy (one request at a
time, as `evaluate` scores it), agreement with
the torch fake-quant reference of the same plan (one request at a time on both sides: the int8
kernels quantize each call's input over its own range), and modeled energy per utterance at the
widths each graph executes (every profile and workload). The CPU model and the onnxruntime
version are recorded with the figures.

    dvc repro && python benchmarks/runtime_ratios.py      (nothing else busy on the CPU)
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stamp import provenance  # noqa: E402  (benchmarks/ is sys.path[0])

from frugal.compress.packed import load_float  # noqa: E402
from frugal.compress.qat import quantized_activations  # noqa: E402
from frugal.config import load_params  # noqa: E402
from frugal.energy.latency import machine_key  # noqa: E402
from frugal.energy.measure import measure_in_fresh_process  # noqa: E402
from frugal.model.modeling import load_classifier, logits_of  # noqa: E402
from frugal.model.runtime import OnnxClassifier  # noqa: E402

DEFAULT_OUTPUT = ROOT / "benchmarks" / "results" / "runtime_ratios.json"
TORCH = "torch FP32 eager"
ORT_FP32 = "ORT FP32"
ANCHOR = "ort_int8"  # the compress variant: quantize_dynamic on the fused float graph


class TorchEager:
    """The trained model as torch runs it: tokenizer + eager forward, batch as given."""

    def __init__(self, model_dir: Path) -> None:
        self.clf = load_classifier(model_dir)

    @torch.inference_mode()
    def logits(self, texts: list[str]) -> np.ndarray:
        batch = self.clf.tokenizer(
            texts, truncation=True, max_length=self.clf.max_length, padding=True,
            return_tensors="pt",
        )  # fmt: skip
        return self.clf.model(**batch).logits.numpy()


def torch_rss(model_dir: Path, workload: Path, batch: int) -> float:
    """Peak RSS (MB) of a fresh process serving the torch model over the workload."""
    code = (
        "import sys, torch, pandas as pd\n"
        f"sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / 'benchmarks')!r}]\n"
        "from benchmarks.runtime_ratios import TorchEager\n"
        "torch.set_num_threads(2)\n"
        f"m = TorchEager({str(model_dir)!r})\n"
        f"texts = pd.read_parquet({str(workload)!r})['text'].astype(str).tolist()\n"
        f"[m.logits(texts[i:i + {batch}]) for i in range(0, len(texts), {batch})]\n"
        "[m.logits([t]) for t in texts[:50]]\n"
        "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1])
    return int(done.stdout.strip().splitlines()[-1]) / 1024


def parity(model_dir: Path, served: OnnxClassifier, texts: list[str]) -> float | None:
    """Share of `texts` on which ONNX Runtime predicts what the torch fake-quant reference of
    the same plan does (None for an uncompressed model)."""
    plan_path = model_dir / "compression.json"
    if not plan_path.is_file():
        return None
    record = json.loads(plan_path.read_text())
    reference, bits = load_float(model_dir)
    act = 8 if record["execution"] == "int8" else None
    with quantized_activations(reference.model, act, record["block_size"], bits):
        torch_pred = np.array([int(logits_of(reference, [t]).argmax(-1)[0]) for t in texts])
    served_pred = np.array([int(served.logits([t]).argmax(1)[0]) for t in texts])
    return float((served_pred == torch_pred).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()
    params = load_params(args.params)
    threads = params.profile.threads
    torch.set_num_threads(threads)
    test = pd.read_parquet(ROOT / params.evaluate.test_data)
    texts, labels = test["text"].astype(str).tolist(), test["label"].astype(str).to_numpy()
    requests = texts[: args.requests]
    base = ROOT / params.train.output_dir
    variants = [ROOT / params.compress.output_dir / v for v in params.compress.variants]
    if ANCHOR not in params.compress.variants:
        raise SystemExit(
            f"compress.variants has no {ANCHOR}: the anchor every model is compared with"
        )
    temp = Path(tempfile.mkdtemp())
    try:
        folders = {TORCH: base, ORT_FP32: base} | {v.name: v for v in variants}
        runners = {name: OnnxClassifier(path, threads) for name, path in folders.items()}
        runners[TORCH] = TorchEager(base)

        # test accuracy and parity first (they also warm every runtime up); one request at a
        # time, as the models serve and as `evaluate` scores them (the int8 kernels quantize each
        # call's input over its own range, so a batch's accuracy differs)
        rows: dict[str, dict] = {}
        for name, runner in runners.items():
            logits = np.concatenate([runner.logits([text]) for text in texts])
            model_labels = np.array(
                json.loads((folders[name] / "frugal.json").read_text())["labels"]
            )
            rows[name] = {
                "test_accuracy": float((model_labels[logits.argmax(1)] == labels).mean()),
                "parity_with_torch_reference": None
                if name == TORCH
                else parity(folders[name], runner, texts),
                "file_bytes": (folders[name] / "model.safetensors").stat().st_size
                if name == TORCH
                else (folders[name] / "model.onnx").stat().st_size,
            }

        per_round: dict[str, list[float]] = {name: [] for name in runners}
        p95: dict[str, list[float]] = {name: [] for name in runners}
        for _ in range(args.rounds):
            for name, runner in runners.items():
                times = []
                for text in requests:
                    started = time.perf_counter()
                    runner.logits([text])  # tokenizing is part of serving a request
                    times.append(time.perf_counter() - started)
                per_round[name].append(1000 * float(np.median(times)))
                p95[name].append(1000 * float(np.percentile(times, 95)))
        throughput: dict[str, list[float]] = {name: [] for name in runners}
        for _ in range(3):
            for name, runner in runners.items():
                started = time.perf_counter()
                for i in range(0, len(texts), 32):
                    runner.logits(texts[i : i + 32])
                throughput[name].append(len(texts) / (time.perf_counter() - started))
        del runners

        workload = temp / "workload.parquet"
        test[["text"]].to_parquet(workload)
        for name, folder in folders.items():
            if name == TORCH:
                rows[name]["peak_rss_mb"] = torch_rss(folder, workload, 32)
            else:
                measured = measure_in_fresh_process(folder, workload, threads, 50, 32)
                rows[name]["peak_rss_mb"] = measured.peak_rss_mb

        # modeled energy at executed widths: the profile stage's figures, the anchor's included
        profile = json.loads((ROOT / params.profile.output).read_text())
        for name, folder in folders.items():
            rows[name]["modeled_uj_per_utterance"] = profile[folder.name]["modeled"][
                "uj_per_utterance"
            ]
    finally:
        shutil.rmtree(temp, ignore_errors=True)

    table = []
    for name, row in rows.items():
        ratios = np.array(per_round[TORCH]) / np.array(per_round[name])
        anchor_ratio = np.array(per_round[ANCHOR]) / np.array(per_round[name])
        row |= {
            "model": name,
            "latency_ms_p50": float(np.median(per_round[name])),
            "latency_ms_p95": float(np.median(p95[name])),
            "torch_fp32_over_latency": float(np.median(ratios)),
            "torch_fp32_over_latency_range": [float(ratios.min()), float(ratios.max())],
            "anchor_over_latency": float(np.median(anchor_ratio)),
            "throughput_per_s_batch32": float(np.median(throughput[name])),
        }
        table.append(row)
    frame = pd.DataFrame(table)
    phone = frame["modeled_uj_per_utterance"].map(lambda u: u["phone"])
    frame["uJ phone batch"] = phone.map(lambda u: u["batch"])
    frame["uJ phone streaming"] = phone.map(lambda u: u["streaming"])
    shown = frame[
        ["model", "test_accuracy", "parity_with_torch_reference", "latency_ms_p50",
         "latency_ms_p95", "torch_fp32_over_latency", "anchor_over_latency",
         "throughput_per_s_batch32", "peak_rss_mb", "file_bytes", "uJ phone batch",
         "uJ phone streaming"]
    ]  # fmt: skip
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "rounds": args.rounds,
        "requests": args.requests,
        "threads": threads,
        "test_texts": len(texts),
        "models": table,
    }
    # the champion the evaluate stage chose (on the selection split), and its accuracy against
    # the base model with 90% paired bootstrap intervals, as reports/metrics.json holds them
    metrics = json.loads((ROOT / params.evaluate.output).read_text())
    champion = next((name for name, m in metrics.items() if m.get("champion")), None)
    result["champion"] = champion
    if champion is not None:
        chosen = metrics[champion]
        result["champion_accuracy"] = {
            "selection_vs_base": chosen["selection_accuracy_vs_baseline"],
            "test_vs_base": chosen["accuracy_vs_baseline_ci90"],
            "source": str(params.evaluate.output),
        }
    result["cpu"] = machine_key()
    result["onnxruntime_version"] = onnxruntime.__version__
    result["provenance"] = provenance()
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
