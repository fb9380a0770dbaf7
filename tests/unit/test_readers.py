"""frugal.data.readers: a user's data set read from CSV, JSON Lines, Parquet or a Hugging Face
folder, and every way it can be bad named with where and how to fix it (given / when / then)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from frugal.data.dataset import (
    MIN_PER_CLASS,
    ingest,
    validate_raw,
)
from frugal.data.readers import read_source
from frugal.errors import DataError
from tests.samples import QUESTIONS, ingest_config, user_frame, write_csv

# --- user sources ------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_user_files_are_read_with_custom_column_names(tmp_path: Path, suffix: str) -> None:
    # given
    frame = user_frame()
    path = tmp_path / f"intents{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True)
    # when
    data = ingest(ingest_config(path))
    # then
    assert list(data.columns) == ["id", "text", "label"]
    assert data["text"].tolist() == frame["utterance"].tolist()
    assert data["label"].tolist() == frame["intent"].tolist()
    assert data["id"].iloc[0] == "row-00000" and data["id"].is_unique


def test_optional_id_and_domain_columns_are_kept_and_labels_become_strings(
    tmp_path: Path,
) -> None:
    # given integer labels, user ids and a domain
    path = tmp_path / "numbers.jsonl"
    lines = [
        {"q": f"  question {i}  ", "y": i % 2, "id": f"u{i}", "domain": "home"} for i in range(8)
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines), encoding="utf-8")
    # when
    data = validate_raw(read_source(path, "q", "y"), str(path), MIN_PER_CLASS, "majority")
    # then
    assert list(data.columns) == ["id", "text", "label", "domain"]
    assert data["label"].tolist() == ["0", "1"] * 4
    assert data["id"].tolist() == [f"u{i}" for i in range(8)]
    assert data["text"].iloc[0] == "question 0"


def test_hf_save_to_disk_folder_maps_class_label_ids_to_names(tmp_path: Path) -> None:
    # given
    datasets = pytest.importorskip("datasets")
    frame = user_frame()
    names = sorted(QUESTIONS)
    features = datasets.Features(
        {"utterance": datasets.Value("string"), "intent": datasets.ClassLabel(names=names)}
    )
    dataset = datasets.Dataset.from_dict(
        {
            "utterance": frame["utterance"].tolist(),
            "intent": [names.index(i) for i in frame["intent"]],
        },
        features=features,
    )
    folder = tmp_path / "hf"
    dataset.save_to_disk(str(folder))
    # when
    data = ingest(ingest_config(folder))
    # then
    assert data["label"].tolist() == frame["intent"].tolist()
    assert data["text"].tolist() == frame["utterance"].tolist()


def test_hf_dataset_dict_uses_the_train_split(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    frame = user_frame()
    train = datasets.Dataset.from_pandas(frame, preserve_index=False)
    other = datasets.Dataset.from_pandas(frame.head(2), preserve_index=False)
    folder = tmp_path / "hf_dict"
    datasets.DatasetDict({"train": train, "test": other}).save_to_disk(str(folder))
    data = read_source(folder, "utterance", "intent")
    assert len(data) == len(frame)


# --- bad input ---------------------------------------------------------------------------------


def _load(path: Path) -> pd.DataFrame:
    return ingest(ingest_config(path))


def test_missing_file_names_the_path_and_the_setting(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    with pytest.raises(DataError, match="not found") as err:
        _load(path)
    assert str(path) in str(err.value) and "ingest.source" in str(err.value)


def test_unsupported_extension_lists_the_supported_ones(tmp_path: Path) -> None:
    path = tmp_path / "intents.xlsx"
    path.write_bytes(b"x")
    with pytest.raises(DataError, match="unsupported file type '.xlsx'") as err:
        _load(path)
    assert str(path) in str(err.value) and ".jsonl" in str(err.value)


def test_missing_column_lists_the_columns_found(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "cols.csv", user_frame().rename(columns={"intent": "tag"}))
    with pytest.raises(DataError, match=r"missing column\(s\) \['intent'\]") as err:
        _load(path)
    message = str(err.value)
    assert str(path) in message and "'tag'" in message and "ingest.label_column" in message


def test_empty_text_names_the_rows(tmp_path: Path) -> None:
    frame = user_frame()
    frame.loc[[2, 5], "utterance"] = ["   ", ""]
    path = write_csv(tmp_path / "empty.csv", frame)
    with pytest.raises(DataError, match=r"empty or whitespace-only text \(rows 3, 6\)") as err:
        _load(path)
    assert str(path) in str(err.value)


def test_non_utf8_bytes_report_offset_and_line(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    content = b"utterance,intent\nplay some jazz,music\n" + "café au lait,x\n".encode("latin-1")
    path.write_bytes(content)
    with pytest.raises(DataError, match="not valid UTF-8") as err:
        _load(path)
    message = str(err.value)
    assert str(path) in message and "line 3" in message and "0xe9" in message


def test_non_utf8_jsonl_is_rejected_too(tmp_path: Path) -> None:
    path = tmp_path / "latin.jsonl"
    path.write_bytes('{"utterance": "caf\xe9", "intent": "x"}\n'.encode("latin-1"))
    with pytest.raises(DataError, match="not valid UTF-8.*line 1"):
        _load(path)


def test_missing_label_names_the_rows(tmp_path: Path) -> None:
    frame = user_frame()
    frame.loc[4, "intent"] = ""
    path = write_csv(tmp_path / "nolabel.csv", frame)
    with pytest.raises(DataError, match=r"missing label \(rows 5\)") as err:
        _load(path)
    assert str(path) in str(err.value)


def test_missing_label_in_parquet_null(tmp_path: Path) -> None:
    frame = user_frame().astype(object)
    frame.loc[0, "intent"] = None
    path = tmp_path / "nolabel.parquet"
    frame.to_parquet(path, index=False)
    with pytest.raises(DataError, match=r"missing label \(rows 1\)"):
        _load(path)


def test_a_single_class_is_rejected(tmp_path: Path) -> None:
    frame = user_frame().assign(intent="music")
    path = write_csv(tmp_path / "one.csv", frame)
    with pytest.raises(DataError, match="found 1 class.*'music'.*at least 2") as err:
        _load(path)
    assert str(path) in str(err.value)


def test_a_class_too_small_to_split_is_named_with_its_count(tmp_path: Path) -> None:
    frame = pd.concat(
        [user_frame(), pd.DataFrame({"utterance": ["hi there"], "intent": ["greeting"]})]
    )
    path = write_csv(tmp_path / "small.csv", frame)
    with pytest.raises(DataError, match=r"fewer than 3 examples.*'greeting': 1") as err:
        _load(path)
    assert str(path) in str(err.value)


def test_duplicate_ids_are_named(tmp_path: Path) -> None:
    frame = user_frame().assign(id=[f"x{i}" for i in range(12)])
    frame.loc[[3, 9], "id"] = "dup"
    path = write_csv(tmp_path / "ids.csv", frame)
    with pytest.raises(DataError, match=r"'dup' \(rows 4, 10\)") as err:
        _load(path)
    assert str(path) in str(err.value) and "unique" in str(err.value)


# --- CSV quoting that parses but means something else -----------------------------------------

UNCLOSED_AT_END = (
    'text,label\n"What is an unclosed quote ?,DESC\nWhat is the capital of France ?,LOC\n'
)


def _csv_text(path: Path, content: str) -> Path:
    path.write_text(content, encoding="utf-8")
    return path


def test_an_unclosed_quote_running_to_the_end_names_its_line(tmp_path: Path) -> None:
    # given a quote opened on line 2 and never closed
    path = _csv_text(tmp_path / "unclosed.csv", UNCLOSED_AT_END)
    # when / then
    with pytest.raises(DataError, match="line 2: not a valid CSV file") as err:
        read_source(path, "text", "label")
    message = str(err.value)
    assert str(path) in message and "never closed" in message
    assert "What is an unclosed quote" in message and "double every quote" in message


def test_an_unclosed_quote_closed_later_by_a_stray_quote_names_where_it_opened(
    tmp_path: Path,
) -> None:
    # given a quote opened on line 3 that the quoted field on line 5 ends early
    content = (
        "text,label\nWho wrote Hamlet ?,HUM\n"
        '"What is an unclosed quote ?,DESC\nWhat is the capital of France ?,LOC\n'
        '"Hi, there",ENTY\nHow far is it ?,NUM\n'
    )
    path = _csv_text(tmp_path / "stray.csv", content)
    with pytest.raises(DataError, match="line 3: not a valid CSV file.*closed on line 5"):
        read_source(path, "text", "label")


def test_text_after_a_closing_quote_is_refused_not_glued_on(tmp_path: Path) -> None:
    # given a text that starts with a quoted title (pandas would drop its quotes)
    path = _csv_text(tmp_path / "title.csv", 'text,label\n"Hamlet" by Shakespeare,ENTY\n')
    with pytest.raises(DataError, match="line 2: not a valid CSV file.*quoting"):
        read_source(path, "text", "label")


def test_rows_silently_merged_by_an_unclosed_quote_are_refused(tmp_path: Path) -> None:
    # given a quote left open on line 3, closed by the inch mark on line 5
    content = (
        "text,label\nWho wrote Hamlet ?,HUM\n"
        '"What is an unclosed quote ?,DESC\nWhat is the capital of France ?,LOC\n'
        'How wide is a 27",NUM\nWhat is a quote ?,DESC\nWhere is Oslo ?,LOC\n'
    )
    path = _csv_text(tmp_path / "merged.csv", content)
    merged = pd.read_csv(path, dtype=str)
    assert len(merged) == 4, "pandas alone reads this file without complaint"
    # when / then
    with pytest.raises(DataError, match="line 3: a quoted field starts here") as err:
        read_source(path, "text", "label")
    message = str(err.value)
    assert "'What is an unclosed quote ?,DESC'" in message and "left open" in message


def test_rows_merged_into_a_middle_column_are_refused(tmp_path: Path) -> None:
    # given an id column before the text, and a quote left open in the text of line 3
    content = (
        "id,text,label\n1,Who wrote Hamlet ?,HUM\n"
        '2,"What is an unclosed quote ?,DESC\n3,What is the capital of France ?,LOC\n'
        '4,How wide is a 27",NUM\n5,Where is Oslo ?,LOC\n'
    )
    path = _csv_text(tmp_path / "merged_id.csv", content)
    with pytest.raises(DataError, match="line 3: a quoted field starts here"):
        read_source(path, "text", "label")


@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
def test_quoted_multi_line_texts_with_commas_and_quotes_pass(tmp_path: Path, line_end: str) -> None:
    # given reviews over several lines, with commas, quotes and a line ending in a label word
    reviews = [
        ("Great product, works well.\nOverall, good\nWould buy again, five stars.", "good"),
        ('Broke after a week.\nThe "support" line never answered,\nbad', "bad"),
        ("Fine, I guess", "good"),
        ("Arrived late,\n\ntwice.", "bad"),
    ] * 3
    frame = pd.DataFrame(reviews, columns=["review", "verdict"])
    path = tmp_path / "reviews.csv"
    frame.to_csv(path, index=False, lineterminator=line_end)
    # when
    data = ingest(ingest_config(path, text_column="review", label_column="verdict"))
    # then the texts come back whole
    assert data["text"].tolist() == frame["review"].tolist()
    assert data["label"].tolist() == frame["verdict"].tolist()
