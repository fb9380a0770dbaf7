"""Human annotation: export batches for people to label, import their labels into the store.

The store is a git-tracked CSV file with columns `id,label,round,source`; one import is one
round and `source` is the imported file's name. Every store write is atomic, so an interrupted
import leaves the previous store intact, and re-running an import is safe: rows already in the
store with the same label are skipped. Imports accept the CSV written by `write_batch` (filled in
a spreadsheet) and Label Studio's "JSON" and "JSON-MIN" exports.

Pure Python (no Prefect, no MLflow, no printing). Every problem with the input raises
`DataError` saying what is wrong, where (file and line or task numbers), and how to fix it.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import pandas as pd

from frugal.data.readers import read_utf8
from frugal.errors import DataError
from frugal.files import write_text_atomic

ANNOTATION_COLUMNS = ("id", "label", "round", "source")
IMPORT_SUFFIXES = (".csv", ".json")
LABEL_CONFIG_NAME = "label_config.xml"
# How many offending rows / ids an error message lists before "...".
_SHOWN = 5
_EXPORT_HINT = (
    "import the file made by `frugal annotate export` after labeling it (CSV), or Label "
    "Studio's 'JSON' or 'JSON-MIN' export of the tasks from that batch's .json file"
)


@dataclass(frozen=True)
class ParsedImport:
    """Labeled rows read from an import file (columns id, label, row) and how many rows were
    left unlabeled. `row` is the CSV line number (header = 1) or the 1-based task number."""

    rows: pd.DataFrame
    n_unlabeled: int


@dataclass(frozen=True)
class MergeResult:
    """What `merge_annotations` wrote: `round` is None when there was nothing to add."""

    added: int
    round: int | None
    store: Path


@dataclass(frozen=True)
class ImportResult:
    """Outcome of one import: rows added, rows already in the store, rows left unlabeled."""

    added: int
    already_present: int
    unlabeled: int
    round: int | None
    store: Path


# --- store ------------------------------------------------------------------------------------


def read_annotations(path: Path) -> pd.DataFrame:
    """The human-annotations store; a missing file means nothing has been labeled yet.

    Returns columns `ANNOTATION_COLUMNS` with `round` as int. Missing or extra columns, empty ids
    or labels, non-integer rounds and repeated ids are errors naming the store's line numbers.
    """
    path = Path(path)
    if not path.exists():
        return _store_frame([], [], [], [])
    header, records = _read_csv_records(path)
    if tuple(header) != ANNOTATION_COLUMNS:
        raise DataError(
            f"{path}: the annotations store must have exactly the columns "
            f"{','.join(ANNOTATION_COLUMNS)} (found {','.join(header) or 'none'}); restore it "
            f"from git, e.g. `git checkout -- {path}`"
        )
    ids, labels, rounds, sources = [], [], [], []
    blank: list[int] = []
    bad_rounds: list[tuple[int, str]] = []
    for line, fields in records:
        record_id, label, round_text, source = (fields + [""] * 4)[:4]
        if not record_id.strip() or not label.strip():
            blank.append(line)
        try:
            round_no = int(round_text)
        except ValueError:
            round_no = 0
        if round_no < 1:
            bad_rounds.append((line, round_text))
        ids.append(record_id.strip())
        labels.append(label.strip())
        rounds.append(round_no)
        sources.append(source)
    problems = []
    if blank:
        problems.append(f"empty id or label on {_lines('line', blank)}")
    if bad_rounds:
        listed = _listed([f"line {line} ({value!r})" for line, value in bad_rounds])
        problems.append(f"round is not a positive integer on {listed}")
    repeated = _positions_by_value(ids, [line for line, _ in records])
    if repeated:
        listed = _listed([f"'{value}' ({_lines('line', at)})" for value, at in repeated.items()])
        problems.append(f"id(s) stored more than once: {listed}")
    if problems:
        raise DataError(
            f"{path}: malformed annotations store: {'; '.join(problems)}. Fix those lines by hand "
            "(one row per id, round a whole number from 1) or restore the file from git"
        )
    return _store_frame(ids, labels, rounds, sources)


def merge_annotations(path: Path, new_rows: pd.DataFrame, source: str) -> MergeResult:
    """Append `new_rows` (id, label) to the store as the next round, written atomically.

    The round is the store's highest round + 1 (1 for an empty store); `source` is recorded on
    every new row. With no new rows nothing is written. The whole store is rewritten through a
    temporary file in the same folder, so an interruption leaves the previous store intact.
    """
    path = Path(path)
    if new_rows.empty:
        return MergeResult(added=0, round=None, store=path)
    existing = read_annotations(path)
    already = sorted(set(existing["id"]) & {str(value).strip() for value in new_rows["id"]})
    if already:
        raise DataError(
            f"{path}: id(s) already in the store: {_listed([repr(i) for i in already])}; "
            "validate the rows with `validate_import` before merging"
        )
    round_no = int(existing["round"].max()) + 1 if len(existing) else 1
    added = _store_frame(
        [str(value).strip() for value in new_rows["id"]],
        [str(value).strip() for value in new_rows["label"]],
        [round_no] * len(new_rows),
        [source] * len(new_rows),
    )
    store = pd.concat([existing, added], ignore_index=True)
    write_text_atomic(path, _store_csv(store), encoding="utf-8")
    return MergeResult(added=len(added), round=round_no, store=path)


# --- export -----------------------------------------------------------------------------------


def write_batch(
    batch: pd.DataFrame, labels: list[str], out_dir: Path, round_no: int
) -> dict[str, Path]:
    """Write one batch for people to label, in two formats, plus a Label Studio config.

    `batch-NNN.csv` (id, text, empty label) is for spreadsheet users; `batch-NNN.json` is a
    Label Studio tasks import; `label_config.xml` is the matching labeling interface (one single
    choice per label). Each file is written atomically. Returns their paths under the keys
    "csv", "label_studio" and "label_config".
    """
    missing = [column for column in ("id", "text") if column not in batch.columns]
    if missing:
        raise DataError(f"batch to export: missing column(s) {missing}; it needs id and text")
    if not labels:
        raise DataError("batch to export: no labels given; the labeling config needs at least one")
    out_dir = Path(out_dir)
    ids = [str(value) for value in batch["id"]]
    texts = [str(value) for value in batch["text"]]
    paths = {
        "csv": out_dir / f"batch-{round_no:03d}.csv",
        "label_studio": out_dir / f"batch-{round_no:03d}.json",
        "label_config": out_dir / LABEL_CONFIG_NAME,
    }
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "text", "label"])
    writer.writerows([record_id, text, ""] for record_id, text in zip(ids, texts, strict=True))
    # A byte-order mark makes Excel open the file as UTF-8 instead of the local code page.
    write_text_atomic(paths["csv"], buffer.getvalue(), encoding="utf-8-sig")
    tasks = [
        {"data": {"text": text, "frugal_id": record_id}}
        for record_id, text in zip(ids, texts, strict=True)
    ]
    tasks_json = json.dumps(tasks, ensure_ascii=False, indent=2) + "\n"
    write_text_atomic(paths["label_studio"], tasks_json, encoding="utf-8")
    write_text_atomic(paths["label_config"], _label_config(labels), encoding="utf-8")
    return paths


def _label_config(labels: Iterable[str]) -> str:
    """Label Studio labeling config: the text and one single-choice list of `labels`."""
    choices = "".join(f"    <Choice value={quoteattr(str(label))}/>\n" for label in labels)
    return (
        "<View>\n"
        '  <Text name="text" value="$text"/>\n'
        '  <Choices name="label" toName="text" choice="single">\n'
        f"{choices}"
        "  </Choices>\n"
        "</View>\n"
    )


# --- import -----------------------------------------------------------------------------------


def import_annotations(
    path: Path, store: Path, pool_ids: Iterable[str], allowed_labels: Iterable[str]
) -> ImportResult:
    """Parse a labeled file, validate it against the pool and the store, and merge it.

    Nothing is written unless the whole file is valid. Rows already in the store with the same
    label are counted in `already_present`, so importing the same file twice is harmless.
    """
    path, store = Path(path), Path(store)
    parsed = parse_import(path)
    existing = read_annotations(store)
    new_rows = validate_import(parsed, pool_ids, allowed_labels, existing, source=str(path))
    merged = merge_annotations(store, new_rows, source=path.name)
    return ImportResult(
        added=merged.added,
        already_present=len(parsed.rows) - len(new_rows),
        unlabeled=parsed.n_unlabeled,
        round=merged.round,
        store=store,
    )


def parse_import(path: Path) -> ParsedImport:
    """Read a file people labeled: a `.csv` (columns id and label) or a Label Studio `.json`.

    Rows without a label are counted as unlabeled, so a partly done batch can be imported.
    Ids and labels are stripped; whether they are valid is `validate_import`'s job.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in IMPORT_SUFFIXES:
        raise DataError(
            f"{path}: unsupported file type '{path.suffix or '(none)'}'; use "
            f"{' or '.join(IMPORT_SUFFIXES)}: {_EXPORT_HINT}. From a spreadsheet, save as "
            "'CSV UTF-8 (comma delimited)'"
        )
    if suffix == ".csv":
        return _parse_labeled_csv(path)
    return _parse_label_studio(path)


def validate_import(
    parsed: ParsedImport,
    pool_ids: set[str] | Iterable[str],
    allowed_labels: Iterable[str],
    existing: pd.DataFrame,
    source: str,
) -> pd.DataFrame:
    """The rows of `parsed` that are new to the store (columns id, label), or one DataError.

    All problems are collected first and reported together, each with its rows: empty ids, ids
    not in the pool, labels not in `allowed_labels`, ids repeated with the same label, and
    conflicting labels (within the file, or against the store). Rows identical to a store entry
    are not errors: they were imported before and are skipped. Labels compare as stripped text.
    """
    pool = {str(value) for value in pool_ids}
    allowed = {str(label).strip() for label in allowed_labels}
    stored = {
        str(record_id): (str(label).strip(), int(round_no), str(stored_source))
        for record_id, label, round_no, stored_source in zip(
            existing["id"], existing["label"], existing["round"], existing["source"], strict=True
        )
    }
    rows = [
        _Row(int(row), str(record_id).strip(), str(label).strip())
        for record_id, label, row in zip(
            parsed.rows["id"], parsed.rows["label"], parsed.rows["row"], strict=True
        )
    ]
    unit = {".csv": "line", ".json": "task"}.get(Path(source).suffix.lower(), "row")
    problems = [
        *_id_problems(rows, pool, unit),
        *_label_problems(rows, allowed, unit),
        *_repeat_problems(rows, stored, unit),
    ]
    if problems:
        raise DataError(
            f"{source}: {len(problems)} kind(s) of problem, nothing imported:\n"
            + "\n".join(f"- {problem}" for problem in problems)
        )
    new = [row for row in rows if row.id not in stored]
    return pd.DataFrame(
        {
            "id": pd.Series([row.id for row in new], dtype=str),
            "label": pd.Series([row.label for row in new], dtype=str),
        }
    )


# --- validation -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    number: int  # line or task number in the imported file
    id: str
    label: str


def _id_problems(rows: list[_Row], pool: set[str], unit: str) -> list[str]:
    problems = []
    empty = [row.number for row in rows if not row.id]
    if empty:
        problems.append(
            f"{len(empty)} labeled row(s) without an id: {_lines(unit, empty)}. Fill in the id "
            "from the exported batch or delete those rows"
        )
    unknown = [f"{unit} {row.number} ('{row.id}')" for row in rows if row.id and row.id not in pool]
    if unknown:
        problems.append(
            f"{len(unknown)} id(s) not in the pool: {_listed(unknown)}. Import only batches "
            "exported from this project's pool, and leave the id column unchanged"
        )
    return problems


def _label_problems(rows: list[_Row], allowed: set[str], unit: str) -> list[str]:
    unknown = [f"{unit} {row.number} ('{row.label}')" for row in rows if row.label not in allowed]
    if not unknown:
        return []
    return [
        f"{len(unknown)} unknown label(s): {_listed(unknown)}. Allowed labels (case-sensitive): "
        f"{', '.join(sorted(allowed))}"
    ]


def _repeat_problems(
    rows: list[_Row], stored: dict[str, tuple[str, int, str]], unit: str
) -> list[str]:
    """Ids given twice with one label (duplicates), or with labels that disagree with each
    other or with the store (conflicts). Agreeing with the store alone is fine."""
    rows_by_id: dict[str, list[_Row]] = {}
    for row in rows:
        if row.id:
            rows_by_id.setdefault(row.id, []).append(row)
    duplicates: list[str] = []
    conflicts: list[str] = []
    for record_id, id_rows in rows_by_id.items():
        file_labels = {row.label for row in id_rows}
        in_store = stored.get(record_id)
        if len(file_labels) > 1 or (in_store is not None and file_labels != {in_store[0]}):
            described = ", ".join(f"'{row.label}' ({unit} {row.number})" for row in id_rows)
            if in_store is not None:
                label, round_no, source = in_store
                described += f" but '{label}' in round {round_no} of the store (from {source})"
            conflicts.append(f"'{record_id}': {described}")
        elif len(id_rows) > 1:
            duplicates.append(f"'{record_id}' ({_lines(unit, [row.number for row in id_rows])})")
    problems = []
    if duplicates:
        problems.append(
            f"{len(duplicates)} id(s) listed more than once with the same label: "
            f"{_listed(duplicates)}. Keep one row per id"
        )
    if conflicts:
        problems.append(
            f"{len(conflicts)} id(s) with conflicting labels: {_listed(conflicts, sep='; ')}. "
            "Keep one label per id; to change a label already in the store, edit its row there"
        )
    return problems


# --- parsing ----------------------------------------------------------------------------------


def _parse_labeled_csv(path: Path) -> ParsedImport:
    columns, records = _read_csv_records(path)
    missing = [name for name in ("id", "label") if name not in columns]
    if missing:
        hint = ""
        if len(columns) == 1 and any(sep in columns[0] for sep in ";\t"):
            hint = " The file seems to use ';' or tabs between columns; save it comma-separated."
        raise DataError(
            f"{path}: missing column(s) {missing} in the header (line 1); columns found: "
            f"{columns}. Keep the header of the exported batch (id,text,label).{hint}"
        )
    id_at, label_at = columns.index("id"), columns.index("label")
    too_long = [line for line, fields in records if any(f.strip() for f in fields[len(columns) :])]
    if too_long:
        raise DataError(
            f"{path}: more fields than the header's {len(columns)} on {_lines('line', too_long)}; "
            "a comma inside a text must be quoted - save the file from a spreadsheet as CSV"
        )
    ids, labels, rows = [], [], []
    n_unlabeled = 0
    for line, fields in records:
        padded = fields + [""] * (len(columns) - len(fields))
        record_id, label = padded[id_at].strip(), padded[label_at].strip()
        if not label:
            # A row with neither id nor label is a blank spreadsheet row, not a batch row.
            n_unlabeled += bool(record_id)
            continue
        ids.append(record_id)
        labels.append(label)
        rows.append(line)
    return ParsedImport(rows=_import_frame(ids, labels, rows), n_unlabeled=n_unlabeled)


def _parse_label_studio(path: Path) -> ParsedImport:
    text = read_utf8(path)
    try:
        tasks = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(
            f"{path}: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno}); "
            f"{_EXPORT_HINT}"
        ) from None
    if not isinstance(tasks, list):
        raise DataError(f"{path}: expected a JSON list of tasks; {_EXPORT_HINT}")
    ids, labels, rows = [], [], []
    n_unlabeled = 0
    shapeless: list[int] = []
    without_id: list[int] = []
    several: list[int] = []
    for number, task in enumerate(tasks, start=1):
        if isinstance(task, dict) and isinstance(task.get("data"), dict):
            record_id, chosen = task["data"].get("frugal_id"), _last_choice(task.get("annotations"))
        elif isinstance(task, dict) and "frugal_id" in task:  # JSON-MIN: flat objects
            record_id, chosen = task["frugal_id"], _min_choice(task.get("label"))
        else:
            shapeless.append(number)
            continue
        if record_id is None:
            without_id.append(number)
        elif len(chosen) > 1:
            several.append(number)
        elif not chosen or not str(chosen[0]).strip():
            n_unlabeled += 1
        else:
            ids.append(str(record_id).strip())
            labels.append(str(chosen[0]).strip())
            rows.append(number)
    problems = []
    if shapeless:
        problems.append(
            "neither a Label Studio task (no 'data') nor a JSON-MIN record (no 'frugal_id'): "
            + _lines("task", shapeless)
        )
    if without_id:
        problems.append(
            f"no data.frugal_id in {_lines('task', without_id)} (tasks must come from a batch "
            "exported by `frugal annotate export`)"
        )
    if several:
        problems.append(
            f"more than one label chosen in {_lines('task', several)}; pick one per task in "
            f"Label Studio (use the batch's {LABEL_CONFIG_NAME}, which allows a single choice)"
        )
    if problems:
        raise DataError(f"{path}: {'; '.join(problems)}; then export again")
    return ParsedImport(rows=_import_frame(ids, labels, rows), n_unlabeled=n_unlabeled)


def _last_choice(annotations: Any) -> list[Any]:
    """Choices of the last annotation that was not cancelled and has a choices result."""
    if not isinstance(annotations, list):
        return []
    for annotation in reversed(annotations):
        if not isinstance(annotation, dict) or annotation.get("was_cancelled"):
            continue
        results = annotation.get("result")
        for result in results if isinstance(results, list) else []:
            value = result.get("value") if isinstance(result, dict) else None
            if isinstance(value, dict) and result.get("type") == "choices":
                choices = value.get("choices")
                if isinstance(choices, list) and choices:
                    return choices
    return []


def _min_choice(label: Any) -> list[Any]:
    """JSON-MIN stores a single choice as a string and several as {"choices": [...]}."""
    if isinstance(label, dict):
        label = label.get("choices")
    if label is None:
        return []
    return list(label) if isinstance(label, list) else [label]


def _read_csv_records(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (starting line number, fields) of each non-blank record; header = line 1."""
    text = read_utf8(path)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records: list[tuple[int, list[str]]] = []
    try:
        header = next(reader, None)
        if header is None:
            raise DataError(f"{path}: the CSV file is empty; it needs a header row")
        line_before = reader.line_num
        for fields in reader:
            if any(field.strip() for field in fields):
                records.append((line_before + 1, fields))
            line_before = reader.line_num
    except csv.Error as err:
        raise DataError(
            f"{path}, line {reader.line_num}: not a valid CSV file ({err}); check the quoting "
            "(a text with commas, quotes or line breaks must be in double quotes)"
        ) from None
    return [name.strip() for name in header], records


# --- writing and small helpers ------------------------------------------------------------------


def _store_csv(store: pd.DataFrame) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(ANNOTATION_COLUMNS)
    writer.writerows(store[list(ANNOTATION_COLUMNS)].itertuples(index=False, name=None))
    return buffer.getvalue()


def _store_frame(
    ids: list[str], labels: list[str], rounds: list[int], sources: list[str]
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": pd.Series(ids, dtype=str),
            "label": pd.Series(labels, dtype=str),
            "round": pd.Series(rounds, dtype="int64"),
            "source": pd.Series(sources, dtype=str),
        }
    )


def _import_frame(ids: list[str], labels: list[str], rows: list[int]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": pd.Series(ids, dtype=str),
            "label": pd.Series(labels, dtype=str),
            "row": pd.Series(rows, dtype="int64"),
        }
    )


def _positions_by_value(values: list[str], positions: list[int]) -> dict[str, list[int]]:
    """Values that occur more than once, with the positions where they occur."""
    seen: dict[str, list[int]] = {}
    for value, position in zip(values, positions, strict=True):
        seen.setdefault(value, []).append(position)
    return {value: at for value, at in seen.items() if len(at) > 1}


def _lines(unit: str, numbers: list[int]) -> str:
    """'line 3' or 'lines 3, 7, ...': at most `_SHOWN` numbers."""
    plural = unit if len(numbers) == 1 else unit + "s"
    return f"{plural} {_listed([str(n) for n in numbers])}"


def _listed(items: list[str], sep: str = ", ") -> str:
    return sep.join(items[:_SHOWN]) + (f"{sep}..." if len(items) > _SHOWN else "")
