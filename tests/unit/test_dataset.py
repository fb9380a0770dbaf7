"""frugal.data.dataset: TREC and user data ingested and validated, conflicting labels
resolved, and the seeded stratified split (given / when / then)."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest

from frugal.data.dataset import (
    MIN_PER_CLASS,
    ingest,
    load_trec,
    resolve_label_conflicts,
    split,
    validate_raw,
)
from frugal.errors import DataError
from tests.samples import COARSE, ingest_config, labeled, user_frame, write_csv

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
    cfg = ingest_config("trec", max_rows=120)
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
        ingest(ingest_config("trec", max_rows=10))


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
        [user_frame(), pd.DataFrame(extra, columns=["utterance", "intent"])], ignore_index=True
    )


@pytest.mark.parametrize(
    ("policy", "dropped_rows"),
    [("keep", []), ("drop", [5, 6, 13, 14, 15]), ("majority", [5, 13, 15])],
)
def test_conflicting_labels_are_kept_dropped_or_voted_and_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, policy: str, dropped_rows: list[int]
) -> None:
    # given
    path = write_csv(tmp_path / "conflicts.csv", _conflicting_frame())
    # when
    with caplog.at_level(logging.WARNING, logger="frugal.data.dataset"):
        data = ingest(ingest_config(path, conflicts=policy))
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
    data = labeled(4)
    twice = pd.concat([data, data.assign(id=data["id"] + "-copy")], ignore_index=True)
    with caplog.at_level(logging.WARNING, logger="frugal.data.dataset"):
        kept = resolve_label_conflicts(twice, "drop", "twice.csv")
    pd.testing.assert_frame_equal(kept, twice)
    assert not caplog.records


def test_an_unknown_conflicts_policy_is_rejected() -> None:
    with pytest.raises(ValueError, match="conflicts"):
        ingest_config("trec", conflicts="first")


# --- split -------------------------------------------------------------------------------------


def test_split_is_deterministic_for_a_seed_and_changes_with_it() -> None:
    data = labeled(30)
    first, again = split(data, 0.1, 0.2, seed=1), split(data, 0.1, 0.2, seed=1)
    other = split(data, 0.1, 0.2, seed=2)
    for name in ("pool", "dev", "test"):
        pd.testing.assert_frame_equal(first[name], again[name])
    assert set(first["test"]["id"]) != set(other["test"]["id"])


def test_split_is_stratified_disjoint_and_complete() -> None:
    # given unbalanced classes
    data = pd.concat([labeled(60, ("a",)), labeled(30, ("b",)), labeled(10, ("c",))])
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
    data = pd.concat([labeled(60, ("a",)), labeled(40, ("b",))])
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
    rare = pd.concat([data, labeled(6, ("c",))])
    parts = split(rare, 0.2, 0.2, seed=13, selection_share=0.5)
    assert "c" in set(parts["dev"]["label"]) and "c" not in set(parts["selection"]["label"])
    with pytest.raises(DataError, match="selection split"):
        split(data, 0.01, 0.2, seed=13, selection_share=0.5)


def test_near_duplicate_texts_never_cross_splits() -> None:
    # given each question repeated with different casing and spacing
    data = labeled(20)
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
    data = labeled(20)
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
    data = pd.concat([labeled(10, ("a", "b")), labeled(2, ("rare",))])
    with pytest.raises(DataError, match="class 'rare' has only 2 distinct"):
        split(data, 0.1, 0.2, seed=0)
