"""Invocation counting on long texts: one forward pass per request (the old way) against one per
distinct request length (`frugal.energy.modeled.request_lengths` + `count_lengths`), same counts.

Long texts: 200 documents of ~350 words, each TREC pool questions (data/splits/pool.parquet)
drawn at random and concatenated, as a news corpus would be; streaming makes one request per
growing word prefix, ~70,000 per model. The old way is reimplemented here as the reference
(tokenize each request, run the model on it alone under the hooks). On streaming it runs on the
first `--reference-texts` documents only and its time is extrapolated linearly to all requests
(the documents are alike: nearly every prefix truncates to max_length); on batch it runs in
full. Checks: the old and new counts are identical on the texts the reference ran, and the
histogram of request lengths is identical on all texts (every prefix tokenized the old way).
Prints a table and writes JSON. Run with nothing else busy on the CPU.

    python benchmarks/energy_counting.py [--model models/base] [--reference-texts 8]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stamp import provenance  # noqa: E402  (benchmarks/ is sys.path[0])

from frugal.config import load_params  # noqa: E402
from frugal.energy.modeled import (  # noqa: E402
    ModuleCounts,
    count_invocations,
    count_lengths,
    request_lengths,
    streaming_requests,
)
from frugal.model.modeling import load_classifier  # noqa: E402

DEFAULT_OUTPUT = ROOT / "benchmarks" / "results" / "energy_counting.json"


def long_documents(questions: list[str], n_texts: int, words: int, seed: int) -> list[str]:
    """`n_texts` documents of at least `words` words: random questions, concatenated."""
    rng = random.Random(seed)
    documents = []
    for _ in range(n_texts):
        parts, length = [], 0
        while length < words:
            question = rng.choice(questions)
            parts.append(question)
            length += len(question.split())
        documents.append(" ".join(parts))
    return documents


def requests_of(texts: list[str], workload: str) -> list[str]:
    if workload == "batch":
        return list(texts)
    return [prefix for text in texts for prefix in streaming_requests(text)]


def per_request_counts(
    model: torch.nn.Module, tokenizer: object, requests: list[str], max_length: int
) -> dict[str, ModuleCounts]:
    """The old way (the removed `count_requests`): every request tokenized and run alone."""

    def run() -> None:
        for text in requests:
            model(**tokenizer([text], truncation=True, max_length=max_length, return_tensors="pt"))

    return count_invocations(model, run)


def tokenized_lengths(
    tokenizer: object, requests: list[str], max_length: int, chunk: int = 2048
) -> Counter[int]:
    """Histogram of request lengths the old way: every request tokenized."""
    lengths: Counter[int] = Counter()
    for start in range(0, len(requests), chunk):
        encoded = tokenizer(
            requests[start : start + chunk], truncation=True, max_length=max_length
        )["input_ids"]
        lengths.update(len(ids) for ids in encoded)
    return lengths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "base")
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--texts", type=int, default=200)
    parser.add_argument("--words", type=int, default=350)
    parser.add_argument("--reference-texts", type=int, default=8)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    params = load_params(args.params)
    threads = params.compress.threads
    torch.set_num_threads(threads)
    pool = ROOT / params.compress.unlabeled_data
    questions = pd.read_parquet(pool)["text"].astype(str).tolist()
    texts = long_documents(questions, args.texts, args.words, args.seed)
    clf = load_classifier(args.model)
    model, tokenizer, max_length = clf.model, clf.tokenizer, clf.max_length
    model.eval()
    # both ways are timed warm: one forward pass first (thread pools, allocator)
    count_lengths(model, {max_length: 1})

    rows = []
    for workload in ("batch", "streaming"):
        requests = requests_of(texts, workload)
        start = time.perf_counter()
        lengths = request_lengths(texts, workload, tokenizer, max_length)
        counts = count_lengths(model, lengths)
        new_s = time.perf_counter() - start

        subset = texts if workload == "batch" else texts[: args.reference_texts]
        reference_requests = requests_of(subset, workload)
        start = time.perf_counter()
        reference = per_request_counts(model, tokenizer, reference_requests, max_length)
        reference_s = time.perf_counter() - start
        subset_counts = count_lengths(
            model, request_lengths(subset, workload, tokenizer, max_length)
        )
        start = time.perf_counter()
        tokenized = tokenized_lengths(tokenizer, requests, max_length)
        tokenize_s = time.perf_counter() - start

        old_s = reference_s * len(requests) / len(reference_requests)
        rows.append(
            {
                "workload": workload,
                "texts": len(texts),
                "requests": len(requests),
                "distinct_lengths": len(lengths),
                "forward_passes_old": len(requests),
                "forward_passes_new": len(lengths),
                "reference_texts": len(subset),
                "reference_requests": len(reference_requests),
                "reference_s": round(reference_s, 2),
                "old_s": round(old_s, 1),
                "old_extrapolated": len(subset) < len(texts),
                "new_s": round(new_s, 3),
                "speedup": round(old_s / new_s, 1),
                "old_tokenize_only_s": round(tokenize_s, 2),
                "counts_identical": subset_counts == reference,
                "lengths_identical": tokenized == lengths,
                "linear_calls": counts["bert.encoder.layer.0.attention.self.query"].calls,
            }
        )

    table = pd.DataFrame(rows).set_index("workload")
    print(
        f"{args.texts} documents of ≥{args.words} words from {pool.name}, model "
        f"{args.model.name}, max_length {max_length}, {threads} threads"
    )
    print(table.T.to_string())
    result = {
        "setup": {
            "documents": args.texts,
            "words_per_document": args.words,
            "words_total": sum(len(t.split()) for t in texts),
            "source": str(pool.relative_to(ROOT)),
            "model": str(args.model.relative_to(ROOT))
            if args.model.is_relative_to(ROOT)
            else str(args.model),
            "max_length": max_length,
            "threads": threads,
            "seed": args.seed,
            "note": (
                "old_s: per-request counting (the removed count_requests), on streaming timed "
                "on reference_texts documents and extrapolated linearly to all requests; "
                "new_s: request_lengths + count_lengths on all documents"
            ),
        },
        "workloads": rows,
    }
    if not all(r["counts_identical"] and r["lengths_identical"] for r in rows):
        raise SystemExit("counts differ between the old and the new way")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    result["provenance"] = provenance()
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
