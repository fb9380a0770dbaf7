"""Does the proxy's choice of labels help the fine-tuned model? Test accuracy of the real
model fine-tuned (params.yaml `train` recipe) on the labels each strategy buys.

Each strategy buys `--budget` labels exactly as the `sample` stage does (params.yaml `sample`:
cold start, rounds, proxy on cached embeddings scored on dev, the pool's labels answering);
then the model is fine-tuned on them and scored on the test split. Prints a table, writes JSON.

    dvc repro embed && python benchmarks/sampling_fine_tune.py [--strategies random entropy]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from frugal import sampling  # noqa: E402
from frugal.config import load_params  # noqa: E402
from frugal.modeling import predict_proba  # noqa: E402
from frugal.training import fine_tune  # noqa: E402

DEFAULT_OUTPUT = ROOT / "benchmarks" / "results" / "sampling_fine_tune.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", nargs="+", default=["random", "entropy"])
    parser.add_argument("--budget", type=int, default=None, help="default: sample.budget")
    parser.add_argument("--seed", type=int, default=None, help="default: sample.seed")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()

    params = load_params(ROOT / "params.yaml")
    cfg = params.sample.model_copy(
        update={
            "budget": args.budget or params.sample.budget,
            "seed": args.seed or params.sample.seed,
        }
    )
    inputs = sampling.load_inputs(cfg)
    dev = pd.read_parquet(params.train.dev_data)
    test = pd.read_parquet(params.forecast.eval_data)
    results = {}
    for strategy in args.strategies:
        run = sampling.simulate(inputs, cfg, strategy, cfg.seed)
        labeled = inputs.pool.iloc[run.positions]
        started = time.perf_counter()
        result = fine_tune(labeled, dev, params.train)
        probs = predict_proba(result.classifier, test["text"].tolist())
        predicted = np.asarray(result.classifier.labels)[probs.argmax(axis=1)]
        accuracy = float((predicted == test["label"].astype(str).to_numpy()).mean())
        results[strategy] = {
            "labels": len(labeled),
            "test_accuracy": accuracy,
            "proxy_dev_accuracy": run.curve[-1].accuracy,
            "labels_per_class": labeled["label"].value_counts().sort_index().to_dict(),
            "steps": result.steps,
            "seconds": round(time.perf_counter() - started, 1),
        }
        print(
            f"{strategy:>16}: test accuracy {accuracy:.4f} with {len(labeled)} labels", flush=True
        )
    payload = {"budget": cfg.budget, "seed": cfg.seed, "strategies": results}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
