"""Orchestration + tracking overhead: the same stages (ingest → prepare → embed → sample →
learning_curve → forecast → train) three ways, in one run.

1. direct   — the `frugal` core functions called in this process (no Prefect, no MLflow, no
              plots or report files);
2. prefect  — the `frugal-pipeline` Prefect flow with `until="train"` in this process (tasks,
              MLflow logging and model registration included; a temporary Prefect server);
3. dvc      — `dvc repro train` in a fresh copy of the repo (one Python process and temporary
              Prefect server per stage, DVC hashing and caching).

Each way runs in its own fresh copy of the repository, with the same params and seeds, so the
work (training steps included) is identical. Prints a table and writes JSON.

    python benchmarks/overhead.py                    # default params: the full default data
    python benchmarks/overhead.py --set train.max_steps=60 --set ingest.max_rows=600
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stamp import provenance  # noqa: E402  (benchmarks/ is sys.path[0])

from orchestration.env import configure_environment  # noqa: E402

configure_environment()

from tests.e2e.conftest import make_repo_copy, project_env  # noqa: E402


def _overrides(pairs: list[str]) -> dict:
    out: dict = {}
    for pair in pairs:
        key, value = pair.split("=", 1)
        section, name = key.split(".", 1)
        out.setdefault(section, {})[name] = json.loads(value) if value != "null" else None
    return out


DIRECT = r"""
import json, sys, time
from pathlib import Path
import pandas as pd
from frugal import files
from frugal.data import dataset
from frugal.config import load_params
from frugal.model.export import save_classifier
from frugal.model.training import fine_tune, learning_curve_points
from frugal.labels import sampling
from frugal.labels.annotation import read_annotations
from frugal.forecast.curves import fit_curve
from frugal.model.modeling import embed_texts

started = time.perf_counter()
p = load_params("params.yaml")
files.write_parquet_atomic(dataset.ingest(p.ingest), p.ingest.output)
raw = pd.read_parquet(p.ingest.output)
files.write_splits_atomic(dataset.split(raw, p.prepare.dev_fraction, p.prepare.test_fraction, p.prepare.seed), p.prepare.output_dir)
for split in dataset.SPLITS:
    frame = pd.read_parquet(p.embed.splits_dir / f"{split}.parquet")
    vectors = embed_texts(frame["text"].tolist(), p.embed.max_length, p.embed.batch_size, p.embed.threads)
    files.write_embeddings_atomic(frame["id"].tolist(), vectors, p.embed.output_dir / f"{split}.npz")
inputs = sampling.load_inputs(p.sample)
for strategy in p.sample.compare:
    for seed in p.sample.seeds:
        sampling.simulate(inputs, p.sample, strategy, seed)
labeled, _ = sampling.buy_labels(inputs, read_annotations(p.sample.annotations), p.sample)
files.write_parquet_atomic(labeled, p.sample.output)
points = learning_curve_points(labeled, pd.read_parquet(p.train.dev_data), pd.read_parquet(p.evaluate.test_data), p.learning_curve.fractions, p.learning_curve.seeds, p.train)
fit_curve(points[["n_labels", "score"]])
result = fine_tune(pd.read_parquet(p.train.labeled_data), pd.read_parquet(p.train.dev_data), p.train)
save_classifier(result.classifier, p.train.output_dir)
print(json.dumps({"best_dev_accuracy": result.best_dev_accuracy, "steps": result.steps, "train_seconds": result.train_seconds}))
"""

PREFECT = r"""
import json, time
from orchestration.env import configure_environment
configure_environment()
from flows.pipeline import frugal_pipeline
frugal_pipeline(until="train")
print(json.dumps(json.load(open("reports/train.json"))))
"""


def _timed(cmd: list[str], repo: Path) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(cmd, cwd=repo, env=project_env(repo), capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{cmd} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return seconds, result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=JSON")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/overhead.json")
    args = parser.parse_args()
    overrides = _overrides(args.set)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for way, cmd in (
            ("direct", [sys.executable, "-c", DIRECT]),
            ("prefect", [sys.executable, "-c", PREFECT]),
            ("dvc", ["dvc", "repro", "train"]),
        ):
            repo = make_repo_copy(Path(tmp) / way, overrides)
            seconds, stdout = _timed(cmd, repo)
            if way == "dvc":
                stdout = (repo / "reports/train.json").read_text().replace("\n", " ")
            result = json.loads(stdout.strip().splitlines()[-1])
            rows[way] = {
                "wall_s": round(seconds, 1),
                "train_s": round(result.get("train_seconds", 0.0), 1),
                "dev_accuracy": round(result["best_dev_accuracy"], 4),
                "steps": result["steps"],
            }
            print(f"{way:8s} done in {seconds:.1f} s", file=sys.stderr, flush=True)
    base = rows["direct"]["wall_s"]
    for row in rows.values():
        row["ratio_vs_direct"] = round(row["wall_s"] / base, 3)
        row["overhead_s"] = round(row["wall_s"] - base, 1)
    print(
        f"{'way':8s} {'wall s':>8s} {'train s':>8s} {'steps':>6s} {'dev acc.':>9s} {'× direct':>9s} {'+ s':>7s}"
    )
    for way, r in rows.items():
        print(
            f"{way:8s} {r['wall_s']:8.1f} {r['train_s']:8.1f} {r['steps']:6d} {r['dev_accuracy']:9.4f} {r['ratio_vs_direct']:9.3f} {r['overhead_s']:7.1f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"overrides": overrides, "cpu_count": os.cpu_count(), "results": rows}
    payload["provenance"] = provenance()
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
