"""Human annotation: export a batch, label it outside the tool, import it into the store
(given / when / then), on real TREC questions."""

from __future__ import annotations

import csv
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest

from frugal import files
from frugal.errors import DataError
from frugal.labels.annotation import (
    ANNOTATION_COLUMNS,
    ImportResult,
    import_annotations,
    merge_annotations,
    parse_import,
    read_annotations,
    write_batch,
)

BATCH_SIZE = 12


@pytest.fixture
def pool(trec_sample: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The pool in a fixed shuffled order, so every batch mixes classes."""
    return trec_sample["pool"].sample(frac=1, random_state=0).reset_index(drop=True)


@pytest.fixture
def labels(pool: pd.DataFrame) -> list[str]:
    return sorted(pool["label"].unique())


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "data" / "labels" / "annotations.csv"


def _truth(pool: pd.DataFrame) -> dict[str, str]:
    return dict(zip(pool["id"], pool["label"], strict=True))


def _export(pool: pd.DataFrame, labels: list[str], out_dir: Path, round_no: int) -> dict[str, Path]:
    """Batch `round_no` (1-based) of BATCH_SIZE pool examples."""
    batch = pool.iloc[(round_no - 1) * BATCH_SIZE : round_no * BATCH_SIZE][["id", "text"]]
    return write_batch(batch, labels, out_dir, round_no)


def _fill_csv(batch_csv: Path, labels_by_id: dict[str, str], blank: set[str] = frozenset()) -> Path:
    """Label the exported CSV as a spreadsheet would save it (BOM, CRLF), leaving `blank` ids
    with whitespace-only labels."""
    with batch_csv.open(encoding="utf-8-sig", newline="") as file:
        rows = list(csv.DictReader(file))
    for row in rows:
        row["label"] = "  " if row["id"] in blank else labels_by_id[row["id"]]
    with batch_csv.open("w", encoding="utf-8-sig", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=["id", "text", "label"])
        writer.writeheader()
        writer.writerows(rows)
    return batch_csv


def _choices(label: str) -> dict:
    return {
        "from_name": "label",
        "to_name": "text",
        "type": "choices",
        "value": {"choices": [label]},
    }


def _label_studio_export(tasks_json: Path, labels_by_id: dict[str, str], out: Path) -> Path:
    """Label Studio's JSON export: an earlier annotation overridden by a later one, a cancelled
    last one that must be ignored, a task nobody labeled and one with only a text area."""
    tasks = json.loads(tasks_json.read_text(encoding="utf-8"))
    for number, task in enumerate(tasks, start=1):
        task["id"] = 100 + number
        task["predictions"] = []
        right = labels_by_id[task["data"]["frugal_id"]]
        task["annotations"] = [
            {"id": 1, "result": [_choices("NUM")], "was_cancelled": False},
            {"id": 2, "result": [_choices(right)], "was_cancelled": False},
            {"id": 3, "result": [_choices("LOC")], "was_cancelled": True},
        ]
    tasks[1]["annotations"] = []
    tasks[2]["annotations"] = [
        {"id": 4, "result": [{"type": "textarea", "value": {"text": ["unsure"]}}]}
    ]
    out.write_text(json.dumps(tasks), encoding="utf-8")
    return out


def _json_min_export(tasks_json: Path, labels_by_id: dict[str, str], out: Path) -> Path:
    """Label Studio's JSON-MIN export: flat records; the first task is unlabeled."""
    tasks = json.loads(tasks_json.read_text(encoding="utf-8"))
    records = [
        {
            "id": 100 + number,
            "text": task["data"]["text"],
            "frugal_id": task["data"]["frugal_id"],
            "label": labels_by_id[task["data"]["frugal_id"]],
            "annotator": 1,
            "annotation_id": number,
            "lead_time": 3.5,
        }
        for number, task in enumerate(tasks, start=1)
    ]
    del records[0]["label"]
    out.write_text(json.dumps(records), encoding="utf-8")
    return out


def _labeled_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    """A returned CSV with one (id, label) per line: header is line 1, rows[i] is line i + 2."""
    path.write_text(
        "id,text,label\n"
        + "".join(f"{record_id},a question,{label}\n" for record_id, label in rows),
        encoding="utf-8",
    )
    return path


def _import(path: Path, store: Path, pool: pd.DataFrame, labels: list[str]) -> ImportResult:
    return import_annotations(path, store, set(pool["id"]), labels)


# --- export -------------------------------------------------------------------------------------


def test_write_batch_writes_csv_label_studio_tasks_and_config(tmp_path, pool, labels):
    # given a batch that includes a question with commas and quotes
    batch = pool[["id", "text"]].iloc[:BATCH_SIZE]
    batch = pd.concat([batch, pool.loc[pool["id"] == "trec-00715", ["id", "text"]]])
    # when it is exported as round 3
    paths = write_batch(batch, labels, tmp_path / "batches", 3)
    # then the three files exist under their names and nothing else (no temp files)
    assert {key: path.name for key, path in paths.items()} == {
        "csv": "batch-003.csv",
        "label_studio": "batch-003.json",
        "label_config": "label_config.xml",
    }
    assert sorted(os.listdir(tmp_path / "batches")) == sorted(p.name for p in paths.values())
    # the CSV holds id, text and an empty label column, text intact
    sheet = pd.read_csv(paths["csv"], dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert list(sheet.columns) == ["id", "text", "label"]
    assert sheet["id"].tolist() == batch["id"].tolist()
    assert sheet["text"].tolist() == batch["text"].tolist()
    assert set(sheet["label"]) == {""}
    # the Label Studio tasks carry the text and the frugal id
    tasks = json.loads(paths["label_studio"].read_text(encoding="utf-8"))
    assert tasks == [
        {"data": {"text": text, "frugal_id": record_id}}
        for record_id, text in zip(batch["id"], batch["text"], strict=True)
    ]
    # the labeling config is XML with one single choice per label
    root = ET.parse(paths["label_config"]).getroot()
    assert root.tag == "View"
    assert root.find("Text").attrib == {"name": "text", "value": "$text"}
    choices = root.find("Choices")
    assert choices.attrib == {"name": "label", "toName": "text", "choice": "single"}
    assert [choice.get("value") for choice in choices.findall("Choice")] == labels


def test_label_config_escapes_labels(tmp_path, pool):
    odd = ["R&D", 'say "hi"', "<b>", "it's"]
    paths = write_batch(pool[["id", "text"]].iloc[:2], odd, tmp_path, 1)
    root = ET.parse(paths["label_config"]).getroot()
    assert [choice.get("value") for choice in root.iter("Choice")] == odd


# --- round trips --------------------------------------------------------------------------------


def test_csv_round_trip_over_two_rounds(tmp_path, pool, labels, store):
    truth = _truth(pool)
    results = []
    for round_no in (1, 2):
        # given an exported batch filled in a spreadsheet
        filled = _fill_csv(_export(pool, labels, tmp_path, round_no)["csv"], truth)
        # when it is imported
        results.append(_import(filled, store, pool, labels))
    # then each import is one round of the whole batch
    assert [(r.added, r.already_present, r.unlabeled, r.round) for r in results] == [
        (BATCH_SIZE, 0, 0, 1),
        (BATCH_SIZE, 0, 0, 2),
    ]
    assert results[0].store == store
    stored = read_annotations(store)
    assert tuple(stored.columns) == ANNOTATION_COLUMNS
    assert stored["round"].dtype == "int64"
    assert stored["id"].tolist() == pool["id"].iloc[: 2 * BATCH_SIZE].tolist()
    assert stored["label"].tolist() == [truth[i] for i in stored["id"]]
    assert stored["round"].tolist() == [1] * BATCH_SIZE + [2] * BATCH_SIZE
    assert stored["source"].tolist() == ["batch-001.csv"] * BATCH_SIZE + ["batch-002.csv"] * (
        BATCH_SIZE
    )
    assert store.read_text(encoding="utf-8").splitlines()[0] == "id,label,round,source"


def test_label_studio_json_round_trip(tmp_path, pool, labels, store):
    truth = _truth(pool)
    # given a Label Studio export where task 2 is unannotated and task 3 has no choice
    tasks_json = _export(pool, labels, tmp_path, 1)["label_studio"]
    export = _label_studio_export(tasks_json, truth, tmp_path / "project-1-at-2025.json")
    # when it is imported
    result = _import(export, store, pool, labels)
    # then the last non-cancelled choice of every other task is stored
    assert (result.added, result.unlabeled, result.round) == (BATCH_SIZE - 2, 2, 1)
    stored = read_annotations(store)
    skipped = set(pool["id"].iloc[1:3])
    assert stored["id"].tolist() == [i for i in pool["id"].iloc[:BATCH_SIZE] if i not in skipped]
    assert stored["label"].tolist() == [truth[i] for i in stored["id"]]
    assert set(stored["source"]) == {"project-1-at-2025.json"}


def test_label_studio_json_min_round_trip(tmp_path, pool, labels, store):
    truth = _truth(pool)
    tasks_json = _export(pool, labels, tmp_path, 1)["label_studio"]
    export = _json_min_export(tasks_json, truth, tmp_path / "min.json")
    result = _import(export, store, pool, labels)
    assert (result.added, result.unlabeled, result.round) == (BATCH_SIZE - 1, 1, 1)
    stored = read_annotations(store)
    assert stored["id"].tolist() == pool["id"].iloc[1:BATCH_SIZE].tolist()
    assert stored["label"].tolist() == [truth[i] for i in stored["id"]]


def test_reimporting_the_same_file_adds_nothing(tmp_path, pool, labels, store):
    filled = _fill_csv(_export(pool, labels, tmp_path, 1)["csv"], _truth(pool))
    _import(filled, store, pool, labels)
    before = store.read_bytes()
    again = _import(filled, store, pool, labels)
    assert (again.added, again.already_present, again.round) == (0, BATCH_SIZE, None)
    assert store.read_bytes() == before


def test_partly_labeled_batch_counts_unlabeled_rows_and_can_be_finished(
    tmp_path, pool, labels, store
):
    # given a batch with 5 rows still blank (whitespace only)
    truth = _truth(pool)
    batch_csv = _export(pool, labels, tmp_path, 1)["csv"]
    todo = set(pool["id"].iloc[:5])
    _fill_csv(batch_csv, truth, blank=todo)
    # when it is imported, then the blanks are counted, not errors
    first = _import(batch_csv, store, pool, labels)
    assert (first.added, first.unlabeled, first.round) == (BATCH_SIZE - 5, 5, 1)
    # and when the rest is labeled and the same file is imported again
    _fill_csv(batch_csv, truth)
    second = _import(batch_csv, store, pool, labels)
    # then only the new labels are added, as the next round
    assert (second.added, second.already_present, second.unlabeled) == (5, BATCH_SIZE - 5, 0)
    assert second.round == 2
    stored = read_annotations(store)
    assert set(stored.loc[stored["round"] == 2, "id"]) == todo


# --- validation errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        pytest.param(
            [(0, "HUM"), ("nope-1", "HUM"), (1, "LOC"), ("nope-2", "NUM")],
            ["2 id(s) not in the pool", "line 3 ('nope-1')", "line 5 ('nope-2')"],
            id="unknown-ids",
        ),
        pytest.param(
            [(0, "HUM"), (1, "HUMAN"), (2, " hum ")],
            [
                "2 unknown label(s)",
                "line 3 ('HUMAN')",
                "line 4 ('hum')",
                "ABBR, DESC, ENTY, HUM, LOC, NUM",
            ],
            id="unknown-labels",
        ),
        pytest.param(
            [(0, "HUM"), (1, "LOC"), (0, " HUM")],
            ["1 id(s) listed more than once with the same label", "(lines 2, 4)"],
            id="duplicates",
        ),
        pytest.param(
            [(0, "HUM"), (1, "LOC"), (0, "NUM")],
            ["1 id(s) with conflicting labels", "'HUM' (line 2), 'NUM' (line 4)"],
            id="conflict-in-file",
        ),
        pytest.param(
            [(0, "HUM"), ("", "LOC")],
            ["1 labeled row(s) without an id: line 3"],
            id="empty-id",
        ),
    ],
)
def test_each_problem_is_reported_with_its_line_numbers(
    tmp_path, pool, labels, store, rows, expected
):
    ids = pool["id"].tolist()
    resolved = [(ids[i] if isinstance(i, int) else i, label) for i, label in rows]
    bad = _labeled_csv(tmp_path / "labels.csv", resolved)
    with pytest.raises(DataError) as err:
        _import(bad, store, pool, labels)
    message = str(err.value)
    assert message.startswith(f"{bad}: 1 kind(s) of problem, nothing imported")
    for fragment in expected:
        assert fragment in message
    assert not store.exists()


def test_conflict_with_the_store_names_the_round(tmp_path, pool, labels, store):
    # given two imported rounds
    truth = _truth(pool)
    for round_no in (1, 2):
        _import(
            _fill_csv(_export(pool, labels, tmp_path, round_no)["csv"], truth), store, pool, labels
        )
    before = store.read_bytes()
    # when a file relabels an example of round 2 (and repeats one of round 1 unchanged)
    relabeled = pool["id"].iloc[BATCH_SIZE]
    other = next(label for label in labels if label != truth[relabeled])
    kept = pool["id"].iloc[0]
    bad = _labeled_csv(tmp_path / "fix.csv", [(kept, truth[kept]), (relabeled, other)])
    with pytest.raises(DataError) as err:
        _import(bad, store, pool, labels)
    # then the conflict names the line, both labels and the round holding the old one
    message = str(err.value)
    assert f"'{relabeled}': '{other}' (line 3) but '{truth[relabeled]}' in round 2" in message
    assert "(from batch-002.csv)" in message
    assert kept not in message
    assert store.read_bytes() == before


def test_json_problems_are_reported_by_task_number(tmp_path, pool, labels, store):
    tasks_json = _export(pool, labels, tmp_path, 1)["label_studio"]
    truth = _truth(pool)
    truth[pool["id"].iloc[3]] = "Location"
    export = _json_min_export(tasks_json, truth, tmp_path / "min.json")
    with pytest.raises(DataError) as err:
        _import(export, store, pool, labels)
    assert "task 4 ('Location')" in str(err.value)


def test_mixed_bad_file_reports_every_problem_and_writes_nothing(tmp_path, pool, labels, store):
    # given a store from an earlier round
    truth = _truth(pool)
    _import(_fill_csv(_export(pool, labels, tmp_path, 1)["csv"], truth), store, pool, labels)
    before = store.read_bytes()
    ids = pool["id"].tolist()
    stored_id, new = ids[0], ids[BATCH_SIZE:]
    other = next(label for label in labels if label != truth[stored_id])
    # and a file with one good new row and one problem of every kind
    rows = [
        (new[0], truth[new[0]]),  # line 2: fine
        ("bogus-id", "HUM"),  # line 3: unknown id
        (new[1], "Human"),  # line 4: unknown label
        (new[2], "LOC"),  # line 5: duplicate of line 6
        (new[2], "LOC"),  # line 6
        (new[3], "NUM"),  # line 7: conflicts with line 8
        (new[3], "HUM"),  # line 8
        (stored_id, other),  # line 9: conflicts with the store
        ("", "DESC"),  # line 10: no id
    ]
    bad = _labeled_csv(tmp_path / "mixed.csv", rows)
    # when it is imported
    with pytest.raises(DataError) as err:
        _import(bad, store, pool, labels)
    # then one error lists all five kinds with their lines, and the store is untouched
    message = str(err.value)
    assert "5 kind(s) of problem, nothing imported" in message
    for fragment in [
        "without an id: line 10",
        "not in the pool: line 3 ('bogus-id')",
        "unknown label(s): line 4 ('Human')",
        f"same label: '{new[2]}' (lines 5, 6)",
        f"'{new[3]}': 'NUM' (line 7), 'HUM' (line 8)",
        f"'{stored_id}': '{other}' (line 9) but '{truth[stored_id]}' in round 1",
    ]:
        assert fragment in message
    assert store.read_bytes() == before
    assert os.listdir(store.parent) == [store.name]


def test_long_lists_of_offending_rows_are_cut_after_five(tmp_path, pool, labels, store):
    bad = _labeled_csv(tmp_path / "labels.csv", [(f"nope-{i}", "HUM") for i in range(7)])
    with pytest.raises(DataError) as err:
        _import(bad, store, pool, labels)
    message = str(err.value)
    assert "7 id(s) not in the pool" in message
    assert "line 6 ('nope-4'), ..." in message
    assert "nope-5" not in message


def test_line_numbers_count_line_breaks_inside_quoted_text(tmp_path, pool, labels, store):
    # given an exported question that spans two lines
    batch = pool[["id", "text"]].iloc[:3].copy()
    batch.loc[batch.index[0], "text"] = "What is\na multi-line question ?"
    batch_csv = write_batch(batch, labels, tmp_path, 1)["csv"]
    labels_by_id = _truth(pool)
    labels_by_id[batch["id"].iloc[1]] = "BOGUS"
    _fill_csv(batch_csv, labels_by_id)
    # then the second question's line is 4 (header 1, first question lines 2-3)
    with pytest.raises(DataError) as err:
        _import(batch_csv, store, pool, labels)
    assert "line 4 ('BOGUS')" in str(err.value)


# --- atomic store writes ------------------------------------------------------------------------


@pytest.mark.parametrize("step", ["fsync", "replace"])
@pytest.mark.parametrize("interruption", [OSError("disk full"), KeyboardInterrupt()])
def test_interrupted_merge_keeps_the_old_store_and_a_rerun_succeeds(
    tmp_path, pool, labels, store, monkeypatch, step, interruption
):
    # given a store from round 1 and a filled round-2 batch
    truth = _truth(pool)
    _import(_fill_csv(_export(pool, labels, tmp_path, 1)["csv"], truth), store, pool, labels)
    before = store.read_bytes()
    second = _fill_csv(_export(pool, labels, tmp_path, 2)["csv"], truth)

    # when the write is interrupted while the new store is being put in place
    def interrupt(*args, **kwargs):
        raise interruption

    monkeypatch.setattr(files.os, step, interrupt)
    with pytest.raises(type(interruption)):
        _import(second, store, pool, labels)
    monkeypatch.undo()
    # then the old store is byte-identical and no temporary file is left
    assert store.read_bytes() == before
    assert os.listdir(store.parent) == [store.name]
    # and running the import again completes it
    rerun = _import(second, store, pool, labels)
    assert (rerun.added, rerun.round) == (BATCH_SIZE, 2)
    assert len(read_annotations(store)) == 2 * BATCH_SIZE


# --- unreadable files ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        (
            "labels.csv",
            "id,text,label\ntrec-1,café ?,HUM\n".encode("latin-1"),
            ["not valid UTF-8", "line 2"],
        ),
        ("labels.xlsx", b"PK\x03\x04", ["unsupported file type '.xlsx'", ".csv or .json"]),
        ("labels.csv", b"", ["empty"]),
        ("labels.csv", b"question,answer\nwho ?,HUM\n", ["missing column(s) ['id', 'label']"]),
        ("labels.csv", b"id;text;label\ntrec-1;who ?;HUM\n", ["';'", "comma-separated"]),
        ("labels.csv", b'id,text,label\ntrec-1,"who ?,HUM\n', ["not a valid CSV", "quoting"]),
        ("labels.csv", b"id,text,label\ntrec-1,who, me ?,HUM\n", ["line 2", "quoted"]),
        ("labels.json", b'[{"data": ', ["not valid JSON", "line 1"]),
        ("labels.json", b'{"tasks": []}', ["expected a JSON list of tasks"]),
        ("labels.json", b'[{"data": {"frugal_id": "a"}}, {"foo": 1}]', ["task 2", "JSON-MIN"]),
        ("labels.json", b'[{"data": {"text": "who ?"}}]', ["no data.frugal_id in task 1"]),
        (
            "labels.json",
            b'[{"frugal_id": "a", "label": {"choices": ["HUM", "LOC"]}}]',
            ["more than one label chosen in task 1"],
        ),
    ],
)
def test_unreadable_import_files_are_clear_errors(tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError) as err:
        parse_import(path)
    message = str(err.value)
    assert message.startswith(str(path))
    for fragment in expected:
        assert fragment in message


def test_missing_import_file_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        parse_import(tmp_path / "nowhere.csv")


# --- the store ----------------------------------------------------------------------------------


def test_missing_store_means_no_labels_yet(store):
    stored = read_annotations(store)
    assert stored.empty
    assert tuple(stored.columns) == ANNOTATION_COLUMNS
    assert stored["round"].dtype == "int64"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("id,label\ntrec-1,HUM\n", ["exactly the columns id,label,round,source", "found id,label"]),
        ("id,label,round,source\ntrec-1,HUM,one,a.csv\n", ["line 2 ('one')", "positive integer"]),
        (
            "id,label,round,source\ntrec-1,HUM,1,a.csv\ntrec-2,LOC,1,a.csv\ntrec-1,HUM,2,b.csv\n",
            ["'trec-1' (lines 2, 4)"],
        ),
    ],
)
def test_malformed_store_is_a_clear_error(store, content, expected):
    store.parent.mkdir(parents=True)
    store.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_annotations(store)
    message = str(err.value)
    assert message.startswith(str(store))
    for fragment in expected:
        assert fragment in message


def test_merge_writes_nothing_without_new_rows_and_refuses_stored_ids(store):
    empty = pd.DataFrame({"id": pd.Series([], dtype=str), "label": pd.Series([], dtype=str)})
    result = merge_annotations(store, empty, "batch-001.csv")
    assert (result.added, result.round) == (0, None)
    assert not store.exists()
    first = pd.DataFrame({"id": ["trec-1"], "label": ["HUM"]})
    assert merge_annotations(store, first, "batch-001.csv").round == 1
    before = store.read_bytes()
    with pytest.raises(DataError, match="already in the store: 'trec-1'"):
        merge_annotations(store, first, "batch-002.csv")
    assert store.read_bytes() == before
