"""Reading a user data set: CSV, JSON Lines, Parquet or a Hugging Face `save_to_disk` folder,
as columns `text` and `label` (plus optional `id` and `domain`).

A file that cannot be read, or that parses as something else than meant (a broken quote that
merges rows), raises `DataError` saying what is wrong, where, and how to fix it. The message
helpers here (`row_numbers`, `excerpt`) are shared with `frugal.data.dataset`'s validation.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from frugal.data.source import TREC_SOURCE
from frugal.errors import DataError

# How many offending rows / values an error message lists before "...".
SHOWN = 5
FILE_SUFFIXES = (".csv", ".parquet", ".jsonl")
# Longest excerpt of a text or line quoted in a message, in characters.
_EXCERPT_CHARS = 60
# A line break as the csv module sees one (it also splits on a bare carriage return).
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_CSV_QUOTE_FIX = (
    "check quoting: close the quote, or, if the quote belongs to the text, put the whole field "
    'in quotes and double every quote inside it (e.g. "He said ""hi""",HUM)'
)


def read_source(
    source: str | Path, text_column: str, label_column: str, knobs: str = "ingest."
) -> pd.DataFrame:
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
    return _select_columns(frame, text_column, label_column, str(path), knobs)


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
                        f"inside it reads as a complete row ({excerpt(line)}): a quote was "
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
        f"({excerpt(lines[field_line - 1].rstrip())}); {_CSV_QUOTE_FIX}"
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
    frame: pd.DataFrame, text_column: str, label_column: str, source_desc: str, knobs: str
) -> pd.DataFrame:
    missing = [column for column in (text_column, label_column) if column not in frame.columns]
    if missing:
        raise DataError(
            f"{source_desc}: missing column(s) {missing}; columns found: {list(frame.columns)}. "
            f"Set {knobs}text_column / {knobs}label_column in params.yaml to the right names"
        )
    selected = pd.DataFrame({"text": frame[text_column], "label": as_str(frame[label_column])})
    for optional in ("id", "domain"):
        if optional in frame.columns and optional not in (text_column, label_column):
            selected[optional] = frame[optional]
    return selected.reset_index(drop=True)


def as_str(values: Iterable[Any]) -> list[str | None]:
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


def row_numbers(positions: list[int]) -> str:
    shown = ", ".join(str(position + 1) for position in positions[:SHOWN])
    return shown + (", ..." if len(positions) > SHOWN else "")


def excerpt(text: str) -> str:
    """`text` quoted for a message, cut to `_EXCERPT_CHARS` characters."""
    if len(text) > _EXCERPT_CHARS:
        text = text[: _EXCERPT_CHARS - 3] + "..."
    return repr(text)
