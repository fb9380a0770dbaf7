"""Data: loading, validation, splitting and atomic writing (given / when / then)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest

from frugal.config import IngestConfig
from frugal.data.dataset import (
    MIN_PER_CLASS,
    ingest,
    load_trec,
    resolve_label_conflicts,
    split,
    validate_raw,
)
from frugal.data.readers import read_source
from frugal.errors import DataError
from frugal.files import write_parquet_atomic, write_splits_atomic

COARSE = {"ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"}
QUESTIONS = {
    "weather": [
        "will it rain tomorrow",
        "how hot is it outside",
        "is it snowing in oslo",
        "what is the forecast for friday",
    ],
    "music": [
        "play some jazz",
        "skip this song",
        "turn the volume up",
        "who sings this track",
    ],
    "alarm": [
        "wake me up at seven",
        "cancel my morning alarm",
        "set an alarm for noon",
        "snooze for ten minutes",
    ],
}


def _user_frame() -> pd.DataFrame:
    """Twelve intents with user-style column names."""
    rows = [(q, intent) for intent, qs in QUESTIONS.items() for q in qs]
    return pd.DataFrame({"utterance": [q for q, _ in rows], "intent": [i for _, i in rows]})


def _ingest_config(source: str | Path, **overrides: object) -> IngestConfig:
    values: dict[str, object] = {
        "source": str(source),
        "text_column": "utterance",
        "label_column": "intent",
        "trec_labels": "coarse",
        "conflicts": "majority",
        "max_rows": None,
        "seed": 13,
        "output": Path("data/raw.parquet"),
    }
    values.update(overrides)
    return IngestConfig.model_validate(values)


def _labeled(n_per_class: int, classes: tuple[str, ...] = ("a", "b", "c")) -> pd.DataFrame:
    rows = [
        (f"{label}-{i}", f"question number {i} about {label}", label)
        for label in classes
        for i in range(n_per_class)
    ]
    return pd.DataFrame(rows, columns=["id", "text", "label"])


# --- TREC --------------------------------------------------------------------------------------


def test_trec_coarse_has_six_classes_and_no_duplicate_questions() -> None:
    # when
    trec = load_trec("coarse")
    # then
    assert 5300 <= len(trec) <= 5450
    assert set(trec["label"]) == COARSE
    assert list(trec.columns) == ["id", "text", "label", "domain"]
    assert not trec["text"].duplicated().any()
    assert trec["id"].is_unique and trec["id"].iloc[0] == "trec-00000"
    assert (trec["label"] == trec["domain"]).all()


def test_trec_fine_labels_have_about_fifty_classes_within_the_coarse_ones() -> None:
    trec = load_trec("fine")
    assert 45 <= trec["label"].nunique() <= 50
    assert {label.split(":")[0] for label in trec["label"]} == COARSE
    assert (trec["label"].str.split(":").str[0] == trec["domain"]).all()


def test_ingest_trec_subsample_is_seeded_stratified_and_keeps_every_class() -> None:
    # given
    cfg = _ingest_config("trec", max_rows=120)
    # when
    first, second = ingest(cfg), ingest(cfg)
    # then
    assert len(first) == 120
    pd.testing.assert_frame_equal(first, second)
    counts = first["label"].value_counts()
    assert set(counts.index) == COARSE
    assert counts.min() >= MIN_PER_CLASS


def test_ingest_rejects_a_subsample_too_small_for_the_classes() -> None:
    with pytest.raises(DataError, match="max_rows=10"):
        ingest(_ingest_config("trec", max_rows=10))


# --- user sources ------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_user_files_are_read_with_custom_column_names(tmp_path: Path, suffix: str) -> None:
    # given
    frame = _user_frame()
    path = tmp_path / f"intents{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True)
    # when
    data = ingest(_ingest_config(path))
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
    frame = _user_frame()
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
    data = ingest(_ingest_config(folder))
    # then
    assert data["label"].tolist() == frame["intent"].tolist()
    assert data["text"].tolist() == frame["utterance"].tolist()


def test_hf_dataset_dict_uses_the_train_split(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    frame = _user_frame()
    train = datasets.Dataset.from_pandas(frame, preserve_index=False)
    other = datasets.Dataset.from_pandas(frame.head(2), preserve_index=False)
    folder = tmp_path / "hf_dict"
    datasets.DatasetDict({"train": train, "test": other}).save_to_disk(str(folder))
    data = read_source(folder, "utterance", "intent")
    assert len(data) == len(frame)


# --- bad input ---------------------------------------------------------------------------------


def _write_csv(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False)
    return path


def _load(path: Path) -> pd.DataFrame:
    return ingest(_ingest_config(path))


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
    path = _write_csv(tmp_path / "cols.csv", _user_frame().rename(columns={"intent": "tag"}))
    with pytest.raises(DataError, match=r"missing column\(s\) \['intent'\]") as err:
        _load(path)
    message = str(err.value)
    assert str(path) in message and "'tag'" in message and "ingest.label_column" in message


def test_empty_text_names_the_rows(tmp_path: Path) -> None:
    frame = _user_frame()
    frame.loc[[2, 5], "utterance"] = ["   ", ""]
    path = _write_csv(tmp_path / "empty.csv", frame)
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
    frame = _user_frame()
    frame.loc[4, "intent"] = ""
    path = _write_csv(tmp_path / "nolabel.csv", frame)
    with pytest.raises(DataError, match=r"missing label \(rows 5\)") as err:
        _load(path)
    assert str(path) in str(err.value)


def test_missing_label_in_parquet_null(tmp_path: Path) -> None:
    frame = _user_frame().astype(object)
    frame.loc[0, "intent"] = None
    path = tmp_path / "nolabel.parquet"
    frame.to_parquet(path, index=False)
    with pytest.raises(DataError, match=r"missing label \(rows 1\)"):
        _load(path)


def test_a_single_class_is_rejected(tmp_path: Path) -> None:
    frame = _user_frame().assign(intent="music")
    path = _write_csv(tmp_path / "one.csv", frame)
    with pytest.raises(DataError, match="found 1 class.*'music'.*at least 2") as err:
        _load(path)
    assert str(path) in str(err.value)


def test_a_class_too_small_to_split_is_named_with_its_count(tmp_path: Path) -> None:
    frame = pd.concat(
        [_user_frame(), pd.DataFrame({"utterance": ["hi there"], "intent": ["greeting"]})]
    )
    path = _write_csv(tmp_path / "small.csv", frame)
    with pytest.raises(DataError, match=r"fewer than 3 examples.*'greeting': 1") as err:
        _load(path)
    assert str(path) in str(err.value)


def test_duplicate_ids_are_named(tmp_path: Path) -> None:
    frame = _user_frame().assign(id=[f"x{i}" for i in range(12)])
    frame.loc[[3, 9], "id"] = "dup"
    path = _write_csv(tmp_path / "ids.csv", frame)
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
    data = ingest(_ingest_config(path, text_column="review", label_column="verdict"))
    # then the texts come back whole
    assert data["text"].tolist() == frame["review"].tolist()
    assert data["label"].tolist() == frame["verdict"].tolist()


# --- conflicting labels ------------------------------------------------------------------------


def _conflicting_frame() -> pd.DataFrame:
    """The twelve intents plus: row 13 repeats row 5 with another label (a 1-1 tie); rows 14 and
    15 repeat row 6, once with its label and once with another (2-1); two more music rows."""
    extra = [
        ("PLAY  some jazz", "alarm"),
        ("skip this song", "music"),
        ("Skip this song ", "weather"),
        ("next track please", "music"),
        ("pause the music", "music"),
    ]
    return pd.concat(
        [_user_frame(), pd.DataFrame(extra, columns=["utterance", "intent"])], ignore_index=True
    )


@pytest.mark.parametrize(
    ("policy", "dropped_rows"),
    [("keep", []), ("drop", [5, 6, 13, 14, 15]), ("majority", [5, 13, 15])],
)
def test_conflicting_labels_are_kept_dropped_or_voted_and_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, policy: str, dropped_rows: list[int]
) -> None:
    # given
    path = _write_csv(tmp_path / "conflicts.csv", _conflicting_frame())
    # when
    with caplog.at_level(logging.WARNING, logger="frugal.data.dataset"):
        data = ingest(_ingest_config(path, conflicts=policy))
    # then the surviving rows keep the ids of their source rows
    expected = [f"row-{row - 1:05d}" for row in range(1, 18) if row not in dropped_rows]
    assert data["id"].tolist() == expected
    # and one warning names both texts, their rows and labels, and what was done
    (record,) = [r for r in caplog.records if r.name == "frugal.data.dataset"]
    message = record.getMessage()
    assert record.levelno == logging.WARNING and str(path) in message
    assert "2 text(s)" in message and "(rows 5, 13: 1 music, 1 alarm)" in message
    assert "(rows 6, 14, 15: 2 music, 1 weather)" in message
    assert f"ingest.conflicts: {policy}" in message
    if dropped_rows:
        assert f"(rows {', '.join(map(str, dropped_rows))})" in message


def test_agreeing_duplicates_are_not_reported(caplog: pytest.LogCaptureFixture) -> None:
    data = _labeled(4)
    twice = pd.concat([data, data.assign(id=data["id"] + "-copy")], ignore_index=True)
    with caplog.at_level(logging.WARNING, logger="frugal.data.dataset"):
        kept = resolve_label_conflicts(twice, "drop", "twice.csv")
    pd.testing.assert_frame_equal(kept, twice)
    assert not caplog.records


def test_an_unknown_conflicts_policy_is_rejected() -> None:
    with pytest.raises(ValueError, match="conflicts"):
        _ingest_config("trec", conflicts="first")


# --- split -------------------------------------------------------------------------------------


def test_split_is_deterministic_for_a_seed_and_changes_with_it() -> None:
    data = _labeled(30)
    first, again = split(data, 0.1, 0.2, seed=1), split(data, 0.1, 0.2, seed=1)
    other = split(data, 0.1, 0.2, seed=2)
    for name in ("pool", "dev", "test"):
        pd.testing.assert_frame_equal(first[name], again[name])
    assert set(first["test"]["id"]) != set(other["test"]["id"])


def test_split_is_stratified_disjoint_and_complete() -> None:
    # given unbalanced classes
    data = pd.concat([_labeled(60, ("a",)), _labeled(30, ("b",)), _labeled(10, ("c",))])
    # when
    parts = split(data, 0.1, 0.2, seed=13)
    # then
    ids = [set(part["id"]) for part in parts.values()]
    assert sum(len(s) for s in ids) == len(data) == len(set().union(*ids))
    overall = data["label"].value_counts(normalize=True)
    for name, part in parts.items():
        shares = part["label"].value_counts(normalize=True)
        assert set(shares.index) == {"a", "b", "c"}, name
        assert (shares - overall).abs().max() < 0.1, name
    assert len(parts["test"]) == 20 and len(parts["dev"]) == 10


def test_the_selection_split_is_carved_from_dev_and_leaves_the_rest_unchanged() -> None:
    # given the same data split with and without a selection share
    data = pd.concat([_labeled(60, ("a",)), _labeled(40, ("b",))])
    plain = split(data, 0.2, 0.2, seed=13)
    carved = split(data, 0.2, 0.2, seed=13, selection_share=0.5)
    # then pool and test are unchanged, and dev is split in two, every class in both halves
    for name in ("pool", "test"):
        pd.testing.assert_frame_equal(plain[name], carved[name])
    dev, selection = set(carved["dev"]["id"]), set(carved["selection"]["id"])
    assert not dev & selection and dev | selection == set(plain["dev"]["id"])
    assert len(selection) == len(dev) == 10
    assert set(carved["selection"]["label"]) == set(carved["dev"]["label"]) == {"a", "b"}
    # a class with a single dev text keeps it; with no class to give one, it is an error
    rare = pd.concat([data, _labeled(6, ("c",))])
    parts = split(rare, 0.2, 0.2, seed=13, selection_share=0.5)
    assert "c" in set(parts["dev"]["label"]) and "c" not in set(parts["selection"]["label"])
    with pytest.raises(DataError, match="selection split"):
        split(data, 0.01, 0.2, seed=13, selection_share=0.5)


def test_near_duplicate_texts_never_cross_splits() -> None:
    # given each question repeated with different casing and spacing
    data = _labeled(20)
    variants = data.assign(
        id=data["id"] + "-v", text="  " + data["text"].str.upper().str.replace(" ", "   ")
    )
    both = pd.concat([data, variants], ignore_index=True)
    # when
    parts = split(both, 0.1, 0.2, seed=7)
    # then
    normalised = {
        name: {" ".join(t.split()).lower() for t in part["text"]} for name, part in parts.items()
    }
    assert not normalised["pool"] & normalised["dev"]
    assert not normalised["pool"] & normalised["test"]
    assert not normalised["dev"] & normalised["test"]


def test_kept_conflicts_and_repeats_never_straddle_splits() -> None:
    # given every other "a" question repeated, once with its label and once labeled "b"
    data = _labeled(20)
    repeated = data[data["label"] == "a"].iloc[::2]
    copies = pd.concat(
        [
            repeated.assign(id=repeated["id"] + "-same"),
            repeated.assign(id=repeated["id"] + "-other", label="b"),
        ]
    )
    kept = validate_raw(
        pd.concat([data, copies], ignore_index=True), "repeats", MIN_PER_CLASS, "keep"
    )
    # when
    parts = split(kept, 0.1, 0.2, seed=3)
    # then each text sits in exactly one split, with all of its rows
    split_of_text: dict[str, set[str]] = {}
    for name, part in parts.items():
        for text in part["text"]:
            split_of_text.setdefault(text, set()).add(name)
    assert all(len(names) == 1 for names in split_of_text.values())
    assert sum(len(part) for part in parts.values()) == len(kept) == 80


def test_split_names_a_class_with_too_few_distinct_texts() -> None:
    data = pd.concat([_labeled(10, ("a", "b")), _labeled(2, ("rare",))])
    with pytest.raises(DataError, match="class 'rare' has only 2 distinct"):
        split(data, 0.1, 0.2, seed=0)


# --- atomic writers ----------------------------------------------------------------------------


def _failing_on_call(monkeypatch: pytest.MonkeyPatch, failing_call: int) -> None:
    """Make DataFrame.to_parquet write some bytes and then fail on its n-th call."""
    original = pd.DataFrame.to_parquet
    calls = {"n": 0}

    def flaky(self: pd.DataFrame, path: object, *args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == failing_call:
            Path(str(path)).write_bytes(b"PAR1 half-written")
            raise OSError("disk full")
        original(self, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", flaky)


def test_write_parquet_atomic_round_trips(tmp_path: Path) -> None:
    frame = _labeled(3)
    path = write_parquet_atomic(frame, tmp_path / "sub" / "raw.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(path), frame)
    assert sorted(p.name for p in path.parent.iterdir()) == ["raw.parquet"]


def test_write_parquet_atomic_failure_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an existing output
    path = tmp_path / "raw.parquet"
    path.write_bytes(b"previous")
    _failing_on_call(monkeypatch, 1)
    # when
    with pytest.raises(OSError, match="disk full"):
        write_parquet_atomic(_labeled(3), path)
    # then
    assert path.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["raw.parquet"]


def test_write_splits_atomic_writes_all_or_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given three splits, an old pool file, and a disk that fails on the second split
    splits = split(_labeled(10), 0.1, 0.2, seed=0)
    (tmp_path / "pool.parquet").write_bytes(b"previous")
    _failing_on_call(monkeypatch, 2)
    # when
    with pytest.raises(OSError, match="disk full"):
        write_splits_atomic(splits, tmp_path)
    # then nothing new, nothing partial, the old file intact
    assert [p.name for p in tmp_path.iterdir()] == ["pool.parquet"]
    assert (tmp_path / "pool.parquet").read_bytes() == b"previous"


def test_write_splits_atomic_writes_every_split(tmp_path: Path) -> None:
    splits = split(_labeled(10), 0.1, 0.2, seed=0)
    paths = write_splits_atomic(splits, tmp_path / "splits")
    assert set(paths) == {"pool", "dev", "test"}
    for name, path in paths.items():
        pd.testing.assert_frame_equal(pd.read_parquet(path), splits[name])
    assert sorted(p.name for p in (tmp_path / "splits").iterdir()) == [
        "dev.parquet",
        "pool.parquet",
        "test.parquet",
    ]
